"""``benchmarks/long_history_probe.py``: a trained HyMiRec evaluated with and without its long
history, paired by run; runs that read no long history are refused."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from serving_runs import MODELS, train_run

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def probe_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("long_history_probe")


def test_a_run_is_evaluated_reading_its_long_history_and_the_recent_items_only(probe_module, tmp_path, monkeypatch):
    monkeypatch.setenv("HYMIREC_DATA_DIR", str(tmp_path / "cache"))
    out = probe_module.probe(train_run(tmp_path, "hymirec"))
    assert [out[r]["max_len"] for r in probe_module.READINGS] == [6, 3]  # data.max_len, then llm.recent
    for reading in probe_module.READINGS:
        assert set(out[reading]) == {"max_len", "valid", "test_masked", "test_by_history_length"}
        assert 0 <= out[reading]["test_masked"]["ndcg@10"] <= 1


def test_a_run_without_a_long_history_is_refused(probe_module, tmp_path, monkeypatch):
    monkeypatch.setenv("HYMIREC_DATA_DIR", str(tmp_path / "cache"))
    run = train_run(tmp_path, "hymirec", lightweight={"enabled": False},
                    llm={**MODELS["hymirec"]["llm"], "indicator": False})
    with pytest.raises(SystemExit, match="reads no long history"):
        probe_module.probe(run)


def test_the_change_is_paired_by_run_and_by_history_group(probe_module):
    def reading(valid: float, test: float, short: float, long: float, max_len: int) -> dict:
        groups = [{"history": "1-20", "users": 3, "recall@10": short, "ndcg@10": short},
                  {"history": "21+", "users": 2, "recall@10": long, "ndcg@10": long}]
        return {"max_len": max_len, "valid": {"ndcg@10": valid},
                "test_masked": {"ndcg@10": test, "recall@10": 2 * test}, "test_by_history_length": groups}

    long, cut = probe_module.READINGS
    runs = [{"seed": 1, long: reading(0.3, 0.2, 0.1, 0.4, 8), cut: reading(0.3, 0.1, 0.1, 0.2, 3)},
            {"seed": 2, long: reading(0.5, 0.2, 0.2, 0.3, 8), cut: reading(0.4, 0.2, 0.2, 0.3, 3)}]
    summary = probe_module.summarise(runs)
    change = summary["change"]
    assert change["test_ndcg@10"]["per_seed"] == pytest.approx([0.1, 0.0])
    assert change["test_ndcg@10"]["mean"] == pytest.approx(0.05)
    assert change["test_ndcg@10"]["std"] == pytest.approx(0.05)
    assert change["valid_ndcg@10"]["per_seed"] == pytest.approx([0.0, 0.1])
    assert change["by_history_length"]["1-20"]["per_seed"] == [0.0, 0.0]
    assert change["by_history_length"]["21+"]["per_seed"] == pytest.approx([0.2, 0.0])
    assert summary["long history"]["by_history_length"]["21+"]["ndcg@10"]["mean"] == pytest.approx(0.35)
    assert summary["recent items only"]["test_recall@10"]["mean"] == pytest.approx(0.3)


def test_a_variant_without_a_finished_run_is_refused_by_name(probe_module, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["long_history_probe.py", "--variants", "hymirec x", "--seeds", "1",
                                     "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        probe_module.main()
    assert exit_.value.code == 2 and "no finished run of 'hymirec x'" in capsys.readouterr().err


def test_another_model_is_probed_at_the_cut_it_is_given(probe_module, tmp_path, monkeypatch):
    monkeypatch.setenv("HYMIREC_DATA_DIR", str(tmp_path / "cache"))
    run = train_run(tmp_path, "sasrec")
    with pytest.raises(SystemExit, match="not a HyMiRec run: give --cut"):
        probe_module.probe(run)
    with pytest.raises(SystemExit, match="data.max_len 6 <= 6 items"):
        probe_module.probe(run, cut=6)
    assert [probe_module.probe(run, cut=2)[r]["max_len"] for r in probe_module.READINGS] == [6, 2]
