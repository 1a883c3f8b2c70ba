"""``RestoredRun``: a finished run restored without a trainer gives the trainer's model and
lists; folders that are not runs, or runs this hymirec cannot read, are refused naming them."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file
from serving_runs import train_run

from hymirec import __version__
from hymirec.cli import main
from hymirec.runs.recommend import recommend_for_user
from hymirec.runs.restored import RestoredRun, RunError
from hymirec.training.config import load_experiment
from hymirec.training.run import build, load_split
from hymirec.training.trainer import Trainer


@pytest.fixture(scope="module")
def hymirec_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("restored")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYMIREC_DATA_DIR", str(root / "cache"))
        yield train_run(root, "hymirec")


def test_restored_run_is_the_trained_model(hymirec_run):
    run = RestoredRun.load(hymirec_run)
    assert not hasattr(run, "optimizer") and not run.model.training
    config = load_experiment(hymirec_run / "config.yaml")
    split = load_split(config)
    torch.manual_seed(config.train.seed)  # as in training: the random frozen parts
    trainer = Trainer(config, build(config, split), split, hymirec_run)
    trainer.load_best()
    ours, theirs = run.model.state_dict(), trainer.model.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], msg=key)
    assert run.cosine == trainer.cosine and run.merge == "max" and run.max_len == 6
    top = recommend_for_user(run, 3, 5)
    assert len(top) == 5 and all(rec.interest in (1, 2) for rec in top)
    assert recommend_for_user(run, 3, 5, merge="round_robin") != [] and run.catalogue() is run.catalogue()


def test_a_run_folder_of_the_pipeline_serves_its_stage2(hymirec_run, tmp_path):
    shutil.copytree(hymirec_run, tmp_path / "job" / "stage2")
    assert RestoredRun.load(tmp_path / "job").run_dir == tmp_path / "job" / "stage2"


def test_missing_and_foreign_runs_are_refused_naming_them(hymirec_run, tmp_path):
    with pytest.raises(RunError, match=f"{tmp_path / 'nowhere'} is not a finished run"):
        RestoredRun.load(tmp_path / "nowhere")
    # Settings this hymirec does not know: a run of another version.
    other = tmp_path / "other"
    shutil.copytree(hymirec_run, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["train"]["warp_drive"] = True
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(RunError, match=f"{other}: its settings do not load .*warp_drive"):
        RestoredRun.load(other)
    # Weights that do not fit the model its settings build.
    config["train"].pop("warp_drive")
    config["model"]["lightweight"]["dim"] = 16
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(RunError, match=f"{other}: its weights do not fit"):
        RestoredRun.load(other)
    # A checkpoint of another layout: refused naming the version that wrote it and this one's.
    shutil.copy(hymirec_run / "config.yaml", other / "config.yaml")
    best = other / "best.safetensors"
    with safe_open(best, framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    assert meta["format"] == "1" and meta["hymirec"] == __version__
    save_file(tensors, best, metadata={**meta, "format": "2", "hymirec": "9.0.0"})
    with pytest.raises(RunError, match=f"{other}: its weights .*checkpoint format 2 \\(written by hymirec 9.0.0\\); "
                                       f"this hymirec \\({__version__}\\) reads format 1"):
        RestoredRun.load(other)


def test_batch_scoring_writes_every_users_list_as_recommend_gives_it(hymirec_run, tmp_path, capsys):
    out = tmp_path / "recs" / "recs.parquet"
    assert main(["recommend", "--run", str(hymirec_run), "--all", "--k", "5", "--out", str(out),
                 "--merge", "round_robin"]) == 0
    assert capsys.readouterr().out.strip() == f"150 recommendations for 30 users written to {out}"
    table = pd.read_parquet(out)
    assert list(table.columns) == ["user", "rank", "item", "score", "interest"]
    run = RestoredRun.load(hymirec_run)
    for user in (1, 17, 30):
        rows = table[table["user"] == str(user)]
        offline = recommend_for_user(run, user, 5, merge="round_robin")
        assert rows["rank"].tolist() == [1, 2, 3, 4, 5]
        assert rows["item"].tolist() == [str(r.item) for r in offline]
        assert rows["interest"].tolist() == [r.interest for r in offline]
        np.testing.assert_allclose(rows["score"], [r.score for r in offline], rtol=1e-5)
    # With a k past what a user has left unseen, the list is what is left.
    assert main(["recommend", "--run", str(hymirec_run), "--all", "--k", "20", "--out", str(out)]) == 0
    counts = pd.read_parquet(out).groupby("user").size()
    seen = {str(u): len(set(run.split.sequences.user(u)[0])) for u in range(1, 31)}
    assert all(counts[user] == 20 - seen[user] for user in seen)


def test_recommend_needs_one_user_or_all_with_a_file(hymirec_run, capsys):
    for argv in (["--all"], ["--user", "1", "--all", "--out", "x.parquet"], [], ["--user", "1", "--out", "x"]):
        assert main(["recommend", "--run", str(hymirec_run), *argv]) == 2
        assert "--all" in capsys.readouterr().err
