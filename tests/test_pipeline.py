"""``hymirec run`` (six resumable stages, stages.json, the report) and ``hymirec recommend``."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from typing import Self

import pytest
import torch
import yaml
from test_cli_train import _toy_dataset_dir

from hymirec.cli import main
from hymirec.pipeline.config import load_pipeline, preset_names
from hymirec.pipeline.stages import STAGES

BERT = {"source": "random-bert", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}
LLAMA = {"source": "random-llama", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
STAGE_NAMES = [stage.name for stage in STAGES]
# What a second run must leave untouched.
OUTPUTS = ["stages.json", "item_embeddings.safetensors", "codebook/codebook.safetensors", "codebook/stats.json",
           "stage1/best.safetensors", "stage2/best.safetensors", "results.json", "report.md"]


def _experiment(items: dict, epochs: int) -> dict:
    return {"data": {"max_len": 6}, "model": {"name": "hllm", "items": items, "user_model": LLAMA},
            "train": {"epochs": epochs, "progress": False}, "eval": {"ks": [10, 20]}}


def _hymirec(epochs: int) -> dict:
    """A tiny HyMiRec stage 2 (two interests, DMIL) reading the injected vectors and codebook."""
    model = {"name": "hymirec", "items": {"encoder": BERT}, "history": {"codebook": "cosine"},
             "lightweight": {"dim": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 16},
             "llm": {"backbone": LLAMA, "recent": 3, "interests": 2}}
    return {"data": {"max_len": 6}, "model": model, "eval": {"ks": [10, 20]},
            "train": {"epochs": epochs, "progress": False, "loss": {"name": "dmil", "window": 2}}}


def _pipeline(data, **changes) -> dict:
    config = {
        "name": "tiny", "dataset": str(data),
        "stage1": _experiment({"encoder": BERT, "trainable": True}, epochs=1),
        "codebook": {"layers": 2, "k": 4},
        # Two epochs: the run is interrupted after the first one.
        "stage2": _hymirec(epochs=2),
        "report": {"users": 3, "k": 5},
    }
    return {**config, **changes}


class Logs(logging.Handler):
    """The hymirec log lines of a block (the stage lines, the trainer's)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> Self:
        logger = logging.getLogger("hymirec")
        self._level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logger = logging.getLogger("hymirec")
        logger.removeHandler(self)
        logger.setLevel(self._level)


def _stage_lines(lines: list[str]) -> dict[str, str]:
    """``{stage: 'reused' | 'done'}`` from the stage log lines."""
    out = {}
    for line in lines:
        if line.startswith("stage ") and (line.endswith("reused") or ": done in " in line):
            name = line.split(":")[0].split()[-1]
            out[name] = "reused" if line.endswith("reused") else "done"
    return out


def _mtimes(out) -> dict[str, int]:
    return {name: os.stat(out / name).st_mtime_ns for name in OUTPUTS}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A toy dataset, a pipeline file and a baselines table; the embeddings cache in a temporary
    data directory for the whole module."""
    root = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYMIREC_DATA_DIR", str(root / "cache"))
        data = _toy_dataset_dir(root)
        config = root / "tiny.yaml"
        config.write_text(yaml.safe_dump(_pipeline(data)))
        baselines = root / "table2.json"
        metrics = {f"{m}@{k}": {"mean": 0.5, "std": 0.01} for m in ("recall", "ndcg") for k in (10, 20)}
        baselines.write_text(json.dumps({"models": {"SASRec": {"test_masked": metrics, "test_unmasked": metrics}}}))
        yield {"root": root, "data": data, "config": config, "baselines": baselines}


@pytest.fixture(scope="module")
def finished(env):
    """A run interrupted (Ctrl-C) after stage 2's first epoch, then run again to the end."""
    from hymirec.training import run

    out = env["root"] / "run"
    argv = ["run", "--config", str(env["config"]), "--out", str(out), "--baselines", str(env["baselines"])]
    real = run.run_experiment

    def interrupt(config, resume=False, overwrite=False, callbacks=None):
        def stop(epoch, record):
            raise KeyboardInterrupt

        return real(config, resume, overwrite, [stop] if config.name == "stage2" else callbacks)

    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp, Logs() as first:
        mp.setattr(run, "run_experiment", interrupt)
        assert main(argv) == 130
    interrupted = json.loads((out / "stages.json").read_text())
    before = {name: os.stat(out / name).st_mtime_ns for name in OUTPUTS[1:5]}
    with Logs() as second:
        assert main(argv) == 0
    return {"out": out, "argv": argv, "interrupted": interrupted, "before": before,
            "first": first.lines, "second": second.lines, "wall_seconds": time.perf_counter() - start}


def test_interrupted_run_resumes_from_the_last_finished_stage(finished):
    out = finished["out"]
    assert list(finished["interrupted"]["done"]) == ["data", "stage1", "codebook"]
    assert _stage_lines(finished["first"]) == {"data": "done", "stage1": "done", "codebook": "done"}
    assert _stage_lines(finished["second"]) == {
        "data": "reused", "stage1": "reused", "codebook": "reused",
        "stage2": "done", "evaluate": "done", "report": "done",
    }
    # Stage 2 continued from its checkpoint (the trainer's resume), stages 1-3 were not redone.
    assert "resumed from epoch 1" in finished["second"]
    epochs = [json.loads(line)["epoch"] for line in (out / "stage2" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert {name: os.stat(out / name).st_mtime_ns for name in finished["before"]} == finished["before"]


def test_run_writes_every_output(finished):
    out = finished["out"]
    state = json.loads((out / "stages.json").read_text())
    assert set(state) == {"config_hash", "config", "done"} and list(state["done"]) == STAGE_NAMES
    # Each stage's wall time, in ms, is the one its log line gave; together they fit in the
    # time the two runs took (stages 1-3 timed in the first, the rest in the second). Evaluate
    # reads what stage 2 measured and may take under a millisecond.
    seconds = {name: record["seconds"] for name, record in state["done"].items()}
    lines = [line for line in finished["first"] + finished["second"] if line.startswith("stage ") and ": done in " in line]
    logged = {line.split(":")[0].split()[-1]: line.rsplit("done in ", 1)[1] for line in lines}
    assert logged == {name: f"{s:.1f} s" for name, s in seconds.items()}
    assert all(round(s, 3) == s >= 0 for s in seconds.values())
    assert min(seconds["stage1"], seconds["codebook"], seconds["stage2"]) > 0  # they train and fit
    assert sum(seconds.values()) <= finished["wall_seconds"]
    assert {k: v for k, v in state["done"]["data"].items() if k != "seconds"} == {
        "dataset": "toy", "users": 30, "items": 20, "interactions": 240}
    vectors = str((out / "item_embeddings.safetensors").resolve())
    codebook = str((out / "codebook" / "codebook.safetensors").resolve())
    assert state["done"]["stage2"]["injected"] == {"model.items.vectors": vectors, "model.history.codebook_path": codebook}
    # results.json is the stage-2 run's, in the form `hymirec train` writes.
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads((out / "stage2" / "results.json").read_text())
    assert set(results) >= {"valid", "test_masked", "test_unmasked", "model", "epochs", "best_epoch"}
    stats = json.loads((out / "codebook" / "stats.json").read_text())
    assert stats["layers"] == 2 and stats["ks"] == [4, 4] and len(stats["layer_stats"]) == 2
    for plot in ("codebook/error_per_layer.png", "stage2/training_curves.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")
    report = (out / "report.md").read_text()
    assert "| split | R@10 | R@20 | N@10 | N@20 |" in report
    assert f"| test, history masked: hymirec (this run) | {results['test_masked']['recall@10']:.4f} |" in report
    assert "| test, unmasked: SASRec | 0.5000 |" in report
    assert "(stage2/training_curves.png)" in report and "(codebook/error_per_layer.png)" in report
    lists = results["test_lists"]
    assert f"Test top-10 lists (max merge): {lists['coverage@10']:.2f} distinct interests per list" in report
    dim = stats["dim"]
    assert f"{stats['bytes_per_item']} bytes per item against {4 * dim} for the raw fp32 vector" in report
    users = report.split("## Top-5 of the first 3 test users")[1]
    assert users.count("### user ") == 3 and "| rank | item | title | score | interest |" in users
    assert len(re.findall(r"^\| \d \| \d+ \| item \d+ \| [\d.-]+ \| [12] \|$", users, re.MULTILINE)) == 15  # 5 per user


def test_second_run_reuses_every_stage(finished):
    out = finished["out"]
    stamps = _mtimes(out)
    with Logs() as logs:
        assert main(finished["argv"]) == 0
    assert _stage_lines(logs.lines) == dict.fromkeys(STAGE_NAMES, "reused")
    assert _mtimes(out) == stamps


def test_other_settings_are_refused_before_any_work(finished, capsys):
    out = finished["out"]
    stamps = _mtimes(out)
    assert main([*finished["argv"], "--set", "stage2.train.lr=0.01", "--set", "codebook.k=5"]) == 2
    err = capsys.readouterr().err
    assert f"{out} was made with other settings (codebook.k, stage2.train.lr); use another --out or --fresh" in err
    assert _mtimes(out) == stamps
    # Settings that only change what is shown are not part of the hash.
    assert main([*finished["argv"], "--set", "stage2.train.progress=true"]) == 0


def test_report_settings_redo_only_the_report_and_fresh_starts_over(finished, env, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished["out"], out)
    argv = ["run", "--config", str(env["config"]), "--out", str(out), "--baselines", str(env["baselines"]),
            "--set", "report.users=1"]
    with Logs() as logs:
        assert main(argv) == 0
    assert _stage_lines(logs.lines) == {**dict.fromkeys(STAGE_NAMES[:-1], "reused"), "report": "done"}
    assert "## Top-5 of the first 1 test users" in (out / "report.md").read_text()
    # --fresh starts over, here with other settings.
    with Logs() as logs:
        assert main([*argv, "--set", "stage2.train.epochs=1", "--fresh"]) == 0
    assert _stage_lines(logs.lines) == dict.fromkeys(STAGE_NAMES, "done")
    assert json.loads((out / "results.json").read_text())["epochs"] == 1


def _rows(printed: str) -> list[list[str]]:
    lines = [line for line in printed.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_recommend_prints_the_top_k_with_interests(finished, env, capsys):
    from hymirec.data.fetch import load_dataset
    from hymirec.data.split import ChronologicalSplit

    split = ChronologicalSplit(load_dataset(str(env["data"])))
    seen = {str(i) for i in split.sequences.user(3)[0]}  # raw ids are the canonical ids here
    capsys.readouterr()
    assert main(["recommend", "--run", str(finished["out"]), "--user", "3", "--k", "5"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["1", "2", "3", "4", "5"]
    assert all(row[1] not in seen and row[2] == f"item {row[1]}" and row[4] in {"1", "2"} for row in rows)
    scores = [float(row[3]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    # A `hymirec train` folder (stage2/) works too; with the history kept, seen items may come back.
    assert main(["recommend", "--run", str(finished["out"] / "stage2"), "--user", "3", "--k", "20",
                 "--keep-history"]) == 0
    assert {row[1] for row in _rows(capsys.readouterr().out)} == {str(i) for i in range(1, 21)}


def test_recommend_bad_input(finished, tmp_path, capsys, monkeypatch):
    from hymirec.runs.restored import RestoredRun

    def never(*args, **kwargs):
        raise AssertionError("no model is built for an unknown user")

    monkeypatch.setattr(RestoredRun, "load", never)
    assert main(["recommend", "--run", str(finished["out"]), "--user", "nobody"]) == 2
    assert "user 'nobody' is not in dataset toy (30 users; ids look like '1', '2', ...)" in capsys.readouterr().err
    assert main(["recommend", "--run", str(tmp_path), "--user", "1"]) == 2
    assert f"{tmp_path} is not a finished run" in capsys.readouterr().err


def test_without_stage1_and_codebook_the_pretrained_encoder_is_exported(env, tmp_path):
    from hymirec.encoders import BackboneConfig, load_backbone

    # A tiny "pretrained" encoder in a folder: random encoders are never exported.
    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig(**BERT), "encoder")
    folder = tmp_path / "tiny-bert"
    backbone.model.save_pretrained(folder)
    backbone.tokenizer.save_pretrained(folder)
    stage2 = _experiment({"encoder": {"source": str(folder)}, "trainable": False}, epochs=1)
    config = tmp_path / "no_stage1.yaml"
    config.write_text(yaml.safe_dump(_pipeline(env["data"], stage1=None, codebook=None, stage2=stage2,
                                               report={"users": 1, "k": 3})))
    out = tmp_path / "run"
    assert main(["run", "--config", str(config), "--out", str(out)]) == 0
    done = json.loads((out / "stages.json").read_text())["done"]
    assert done["stage1"]["source"] == "pretrained encoder" and done["codebook"]["skipped"]
    assert not (out / "stage1").exists() and not (out / "codebook").exists()
    report = (out / "report.md").read_text()
    assert "## Codebook" not in report and "stage 1: none" in report and "## Top-3 of the first 1" in report


def test_presets_load_and_bad_configs_are_named(env, tmp_path, capsys):
    assert {"default", "paper"} <= set(preset_names())
    for name in preset_names():
        assert load_pipeline(name).name == name
    overridden = load_pipeline(None, None, ["stage2.train.lr=1e-4", "codebook.layers=2"], dataset="other")
    assert overridden.experiment("stage2", tmp_path).train.lr == 1e-4 and overridden.codebook["layers"] == 2
    assert overridden.stage1["data"]["dataset"] == overridden.stage2["data"]["dataset"] == "other"

    out = tmp_path / "never"
    assert main(["run", "--preset", "nope", "--out", str(out)]) == 2
    assert "unknown preset 'nope'; the presets are ['default', 'paper']" in capsys.readouterr().err
    cases = {
        "bogus: 1\n": r"unknown key(s) ['bogus']",
        "stage2: {train: {bogus: 1}}\n": r"stage2.train: unknown key(s) ['bogus']",
        "codebook: {layer: 2}\n": r"codebook: unknown key(s) ['layer']",
        "stage1: {data: {dataset: elsewhere}}\n": "stage1.data.dataset is 'elsewhere'",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        assert main(["run", "--config", str(bad), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    broken = tmp_path / "table2.json"
    broken.write_text(json.dumps({"models": {"SASRec": {"test_masked": {"recall@10": 0.3}}}}))
    assert main(["run", "--config", str(env["config"]), "--out", str(out), "--baselines", str(broken)]) == 2
    assert "models.SASRec.test_masked.recall@10 has no numeric mean" in capsys.readouterr().err
    assert not out.exists()


def test_fresh_deletes_only_run_folders(env, tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["run", "--config", str(env["config"]), "--out", str(precious), "--fresh"]) == 2
    assert "--fresh deletes `hymirec run` folders only" in capsys.readouterr().err
    assert main(["run", "--config", str(env["config"]), "--out", str(precious)]) == 2
    assert "is not empty and has no stages.json" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


def test_a_setting_added_since_the_folder_was_made_is_reused_at_its_default(tmp_path):
    from hymirec.config import ConfigError
    from hymirec.pipeline.stages import STATE_FILE, open_run_folder

    out = tmp_path / "run"
    open_run_folder(out, load_pipeline("default"))
    # As written by a hymirec without train.ema_decay (and so with another hash).
    state = json.loads((out / STATE_FILE).read_text())
    for stage in ("stage1", "stage2"):
        del state["config"][stage]["train"]["ema_decay"]
    state["config_hash"] = "older"
    (out / STATE_FILE).write_text(json.dumps(state))
    assert open_run_folder(out, load_pipeline("default"))["config_hash"] != "older"
    # Away from its default it is a different job, as is any setting the folder has.
    for override in ("stage2.train.ema_decay=0.9", "stage2.train.lr=0.5"):
        with pytest.raises(ConfigError, match=override.split("=")[0]):
            open_run_folder(out, load_pipeline("default", overrides=[override]))
