import json
import re
import os

import numpy as np
import pytest

from hymirec.cli import main
from helpers import make_dataset


def _toy_dataset_dir(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(u, int(i), t) for u in range(1, 31) for t, i in enumerate(rng.integers(1, 21, 8))]
    return make_dataset(rows, n_items=20).save(tmp_path / "toy")


def _common(tmp_path, data):
    return ["--set", f"data.dataset={data}", "--set", "data.max_len=6", "--set", "train.progress=false",
            "--set", "model.dim=8", "--set", "model.num_layers=1", "--set", "model.ffn_dim=8",
            "--set", "eval.ks=[10, 50]", "--out", str(tmp_path / "runs")]


def test_train_then_evaluate_prints_metrics_tables(tmp_path, capsys):
    data = _toy_dataset_dir(tmp_path)
    assert main(["train", "--set", "name=cli", "--set", "train.epochs=2", *_common(tmp_path, data)]) == 0
    out = capsys.readouterr().out
    assert "| test (history masked) |" in out and "| R@10 |" in out
    results = json.loads((tmp_path / "runs" / "cli" / "results.json").read_text())
    assert results["epochs"] == 2 and set(results) >= {"valid", "test_masked", "test_unmasked"}
    groups = results["test_by_history_length"]
    assert sum(g["users"] for g in groups) == results["split"]["eval_users"]
    assert "test (history masked) by history length" in out and f"| {groups[0]['history']} items (" in out

    assert main(["evaluate", "--run", str(tmp_path / "runs" / "cli")]) == 0
    assert "| test (unmasked) |" in capsys.readouterr().out

    # --update: a results file written before a measure existed gets it; training records stay.
    path = tmp_path / "runs" / "cli" / "results.json"
    path.write_text(json.dumps({k: v for k, v in results.items() if k != "test_by_history_length"}))
    assert main(["evaluate", "--run", str(tmp_path / "runs" / "cli"), "--update"]) == 0
    assert json.loads(path.read_text()) == results
    assert main(["evaluate", "--run", str(tmp_path / "runs" / "cli"), "--update",
                 "--set", "eval.mask_history=false"]) == 2
    assert "drop --set" in capsys.readouterr().err


def test_train_refuses_to_overwrite_and_resumes(tmp_path, capsys):
    data = _toy_dataset_dir(tmp_path)
    args = ["train", "--set", "name=r", *_common(tmp_path, data)]
    assert main([*args, "--set", "train.epochs=1"]) == 0
    assert main([*args, "--set", "train.epochs=1"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--set", "train.epochs=2", "--resume"]) == 0
    history = (tmp_path / "runs" / "r" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in history] == [1, 2]
    assert main([*args, "--set", "train.epochs=1", "--overwrite"]) == 0


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train: {lr: 0.001, bogus: 3}\n")
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "hymirec: error:" in err and "bogus" in err


def test_mostpop_runs_through_the_same_protocol(tmp_path, capsys):
    data = _toy_dataset_dir(tmp_path)
    assert main(["train", "--set", "model.name=mostpop", "--set", "name=pop", "--set", f"data.dataset={data}",
                 "--set", "eval.ks=[10, 50]", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "runs" / "pop" / "results.json").read_text())
    # The same numbers as MostPop fitted and evaluated by hand on the same split.
    from hymirec.data.fetch import load_dataset
    from hymirec.data.split import ChronologicalSplit
    from hymirec.evaluation.evaluator import Evaluator
    from hymirec.evaluation.inference import evaluate_model
    from hymirec.models import ModelInputs, MostPop, MostPopConfig

    split = ChronologicalSplit(load_dataset(str(data)))
    pop = MostPop(MostPopConfig(), ModelInputs(split.n_items, 200, train_sequences=split.train_sequences()))
    for key, masked in (("test_masked", True), ("test_unmasked", False)):
        evaluator = Evaluator([10, 50], masked)
        expected = evaluate_model(pop, split.examples("test"), evaluator, max_len=200, cosine=False).metrics
        assert results[key] == pytest.approx(expected)
    assert results["model"] == "mostpop" and results["epochs"] == 0
    assert f"| test (history masked) | {results['test_masked']['recall@10']:.4f} |" in out


def test_cli_makes_idle_openmp_threads_wait_passively_unless_the_user_chose(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["model.items.template='Plot: {plot}'"], r"template field\(s\) \['plot'\] are not item columns"),
        (["model.items.encoder.source=/no/such/model"], "/no/such/model does not exist"),
        (["model.items.pooling=max"], r"'max' is not one of"),
        (["model.items.item_token=true"], r"unknown key\(s\) \['item_token'\]"),
    ],
)
def test_text_model_bad_input_fails_before_training(tmp_path, capsys, settings, message):
    data = _toy_dataset_dir(tmp_path)
    argv = ["train", "--set", "model.name=morec", "--set", "name=bad", "--set", f"data.dataset={data}",
            "--out", str(tmp_path / "runs")]
    for item in settings:
        argv += ["--set", item]
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs" / "bad").exists()


def test_item_without_text_is_named(tmp_path, capsys):
    from hymirec.data.dataset import InteractionDataset

    dataset = InteractionDataset.load(_toy_dataset_dir(tmp_path))
    dataset.items.loc[4, "title"] = " "
    data = dataset.save(tmp_path / "blank")
    assert main(["train", "--set", "model.name=morec", "--set", f"data.dataset={data}",
                 "--out", str(tmp_path / "runs")]) == 2
    assert "1 item(s) have no text, the first raw id '5'" in capsys.readouterr().err
