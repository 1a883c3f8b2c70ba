"""The analysis benchmarks refuse out-of-range options before any training, naming the option."""

import importlib
import json
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script,argv,message", [
    ("figure3_sweeps", ["--s", "0"], "argument --s: must be >= 1, got 0"),
    ("figure3_sweeps", ["--w", "-2"], "argument --w: must be >= 1, got -2"),
    ("figure3_sweeps", ["--s", "--w", "4"], "are Table 4 runs"),
    ("beyond_next_item", ["--cold", "1.5"], r"argument --cold: must be a share in (0, 1), got 1.5"),
    ("beyond_next_item", ["--cold", "0"], r"argument --cold: must be a share in (0, 1), got 0.0"),
    ("beyond_next_item", ["--window", "1"], "argument --window: must be >= 2 (1 is leave-one-out), got 1"),
    ("synthetic_interests", ["--window", "0"], "--window must be >= 1, got 0"),
    ("synthetic_interests", ["--max-interests", "1", "--min-interests", "1"], "--max-interests must be >= 2"),
    ("cost_vs_history", ["--lengths", "10", "100"], "--lengths must all be > n = 20"),
    ("serving_load", ["--run", "runs/x"], "--run must be NAME=DIR, got 'runs/x'"),
    ("serving_load", ["--run", "a=b", "--requests", "0"], "argument --requests: must be >= 1, got 0"),
    ("table2_ml100k", ["--dataset", "movielens-small", "--variants", "patchrec text"],
     "--variants ['patchrec text'] are not trained on movielens-small"),
])
def test_out_of_range_options_are_refused_by_name(script, argv, message, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as exit_:
        module.main()
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err



@pytest.fixture
def variants(tmp_path, monkeypatch):
    """``benchmarks/variants.py`` with an empty run folder ``tmp_path / "run"``."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    (tmp_path / "run").mkdir()
    return importlib.import_module("variants")


@pytest.mark.parametrize("killed,reuse,flag", [
    (False, True, "--overwrite"),
    (True, True, "--resume"),  # killed midway: continued, not started over
    (True, False, "--overwrite"),
])
def test_a_benchmark_run_resumes_only_when_reused_after_a_kill(killed, reuse, flag, variants, tmp_path, monkeypatch):
    if killed:  # after two epochs of 100 and 200 training seconds
        (tmp_path / "run" / variants.LAST).write_bytes(b"")
        (tmp_path / "run" / "metrics.jsonl").write_text('{"train_seconds": 100.0}\n{"train_seconds": 200.0}\n')
    commands = []

    def fake_train(cmd, **_):
        commands.append(cmd)
        (tmp_path / "run" / "results.json").write_text('{"seed": 1}')

    monkeypatch.setattr(variants.subprocess, "run", fake_train)
    wall = variants.run_one("sasrec", 1, [], tmp_path, name="run", reuse=reuse)["wall_seconds"]
    assert flag in commands[0] and ({"--resume", "--overwrite"} - {flag}).isdisjoint(commands[0])
    # A continued run's time counts the epochs trained before it was killed.
    assert (wall >= 300.0) == (flag == "--resume")


def test_a_finished_benchmark_run_is_read_not_trained_again(variants, tmp_path, monkeypatch):
    (tmp_path / "run" / "results.json").write_text('{"seed": 1, "best_epoch": 3}')
    monkeypatch.setattr(variants.subprocess, "run", lambda *a, **k: pytest.fail("trained again"))
    assert variants.run_one("sasrec", 1, [], tmp_path, name="run", reuse=True)["best_epoch"] == 3


def test_runs_made_on_a_gpu_are_labelled_with_it_when_tabulated_elsewhere(variants):
    assert variants.trained_on([{"gpu": "NVIDIA H200"}, {"gpu": "NVIDIA H200"}]) == "NVIDIA H200 (train.device=cuda)"
    assert variants.trained_on([{"seed": 1}]) == variants.machine()


@pytest.mark.parametrize("reuse", [False, True])
def test_a_killed_recbole_run_is_continued_only_with_reuse(reuse, tmp_path, monkeypatch):
    """peer_recbole: --reuse keeps the run's working folder and asks the runner to resume from it;
    otherwise the folder is cleared and the run starts over. A resumed run's wall time adds up
    the earlier processes'."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    peer = importlib.import_module("peer_recbole")
    monkeypatch.setattr(peer, "peer_dir", lambda: tmp_path / "peer")
    monkeypatch.setattr(peer, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(peer, "ROOT", tmp_path)
    checkpoint = tmp_path / "peer" / "recbole-work" / "sasrec_seed2020" / "saved" / "last.pth"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    commands = []

    class FakeRunner:
        def __init__(self, cmd, **_):
            commands.append(cmd)
            out = Path(cmd[cmd.index("--out") + 1])
            earlier = 1000.0 if "--resume" in cmd else 0.0
            out.write_text(json.dumps({"earlier_wall_seconds": earlier, "epochs_run": 3, "best_epoch": 2,
                                       "peak_rss_mb": 1}))
            self.stdout = iter(["epoch 2 training\n"])

        def wait(self):
            return 0

    monkeypatch.setattr(peer.subprocess, "Popen", FakeRunner)
    args = SimpleNamespace(reuse=reuse, threads=1, batch_size=256, epoch_caps={})
    run = peer.run_recbole(Path("python"), "sasrec", 2020, args, tmp_path, "[1/1]")
    assert ("--resume" in commands[0]) == reuse
    assert checkpoint.exists() == reuse
    assert (run["wall_seconds"] >= 1000.0) == reuse


def test_table2_chooses_the_best_validation_mean_among_the_variants_with_the_most_seeds(monkeypatch):
    """A mean over 5 seeds is not beaten by a higher one over 3 (two variants tied at 3 seeds get
    2 more each, and the choice is made between them alone); the test split is never read."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    table2 = importlib.import_module("table2_ml100k")
    variants = {"a": {"seeds": 3, "valid_ndcg@10": {"mean": 0.140}, "test_masked": {"ndcg@10": {"mean": 0.2}}},
                "b": {"seeds": 5, "valid_ndcg@10": {"mean": 0.134}},
                "c": {"seeds": 5, "valid_ndcg@10": {"mean": 0.135}}}
    assert table2.chosen(variants) == "c"
    assert table2.chosen({"a": variants["a"], "b": {**variants["b"], "seeds": 3}}) == "a"


def test_table2_tabulates_ndcg_by_history_length_for_the_rows_whose_runs_report_it(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    table2 = importlib.import_module("table2_ml100k")
    variants = importlib.import_module("variants")

    def run(short: float, long: float) -> dict:
        return {"test_by_history_length": [{"history": "1-20", "users": 3, "recall@10": short, "ndcg@10": short},
                                           {"history": "21+", "users": 2, "recall@10": long, "ndcg@10": long}]}

    runs = [{**run(0.1, 0.3), "seed": 1}, {**run(0.2, 0.5), "seed": 4}]
    summary = variants.history_length_summary(runs)
    assert summary["seeds"] == [1, 4]
    assert summary["groups"]["21+"] == {"users": 2, "recall@10": {"mean": 0.4, "std": pytest.approx(0.1)},
                                        "ndcg@10": {"mean": 0.4, "std": pytest.approx(0.1)}}
    # A run evaluated before the measure existed is left out of it, not of the rest of the row.
    metrics = {m: 0.1 for m in variants.metric_names(variants.EVAL_KS)}
    older = {"seed": 2, "valid": metrics, "test_masked": metrics, "test_unmasked": metrics}
    row = variants.table_summary([{**older, **r} for r in runs] + [older])
    assert row["seeds"] == 3 and row["test_by_history_length"] == summary
    models = {"A": {"variant": "a", "seeds": 2, "test_by_history_length": summary}, "B": {"variant": "b", "seeds": 3}}
    lines = table2.history_length_table(models)
    assert lines[4] == "| model | variant | seeds | 1-20 items (3 users) | 21+ items (2 users) |"
    assert lines[6] == "| A | a | 1, 4 | 0.1500 ± 0.0500 | 0.4000 ± 0.1000 |" and len(lines) == 8  # B has none
    assert table2.history_length_table({"B": models["B"]}) == []


def test_table2_rows_on_other_datasets_override_the_searched_rows(monkeypatch):
    """HyMiRec's searched settings read rows of 512; on another dataset its rows of 128 (or the
    long-context variant's rows of 512 training their last 128) come after them and win."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    table2 = importlib.import_module("table2_ml100k")
    trainable, _, _ = table2.plan("movielens-small")

    def last(overrides: list[str], key: str) -> str:
        return [o for o in overrides if o.startswith(key + "=")][-1]

    for name, (_, overrides) in trainable.items():
        if name.startswith("hymirec") and "long context" not in name:
            assert last(overrides, "data.max_len") == "data.max_len=128", name
            assert last(overrides, "train.batch_size") == "train.batch_size=16", name
    long_context = trainable["hymirec text+ID tiled EMA identity head long context"][1]
    assert [last(long_context, k) for k in ("data.max_len", "data.window_context", "train.batch_size")] == [
        "data.max_len=512", "data.window_context=384", "train.batch_size=16"]
    ids_loss = trainable["hymirec text+ID tiled EMA identity head long context ids+loss"][1]
    assert last(ids_loss, "data.window_context") == "data.window_context=384"
    assert "model.lightweight.item_ids=shared" in ids_loss
    # A baseline's variant keeps its own rows: HyMiRec's are not applied to it.
    assert trainable["sasrec max_len 200"] == ("sasrec", ["data.max_len=200", "train.batch_size=4"])

