"""``codebook fit`` / ``codebook report``, the files they write, and the quality measures."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from hymirec.codebook import (
    CodebookConfig,
    CodebookError,
    ResidualCodebook,
    balance,
    clustered_embeddings,
    load_codes,
    load_embeddings,
    neighbour_recall,
    top_k_cosine,
)
from hymirec.codebook.cli import register
from hymirec.codebook.report import build_report


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hymirec")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def embeddings_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emb")
    x = clustered_embeddings(2000, 24, n_topics=4, clusters_per_topic=4, rank=4, seed=3)
    np.save(folder / "items.npy", x)
    return folder / "items.npy", x


@pytest.fixture(scope="module")
def fitted_dir(tmp_path_factory, embeddings_file):
    out = tmp_path_factory.mktemp("book") / "cb"
    path, _ = embeddings_file
    argv = ["codebook", "fit", "--embeddings", str(path), "--layers", "3", "--k", "16", "--out", str(out)]
    assert run(argv) == 0
    return out


def test_fit_writes_codebook_codes_and_summary(fitted_dir, embeddings_file, capsys):
    _, x = embeddings_file
    book = ResidualCodebook.load(fitted_dir / "codebook.safetensors")
    assert book.config.layers == 3 and book.config.ks == [16, 16, 16]
    codes, scales = load_codes(fitted_dir / "codes.safetensors")
    assert codes.shape == (2000, 3) and codes.dtype == np.uint8 and scales.dtype == np.float16
    np.testing.assert_array_equal(codes, book.encode(x)[0])
    summary = json.loads((fitted_dir / "fit_summary.json").read_text())
    cosines = summary["items"]["reconstruction_cosine"]
    assert len(cosines) == 3 and cosines == sorted(cosines)
    approx = book.decode(codes, scales)
    direct = (x * approx).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(approx, axis=1)
    assert cosines[-1] == pytest.approx(float(direct.mean()), abs=1e-3)


def test_report_writes_json_markdown_and_png(fitted_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert run(["codebook", "report", str(fitted_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "9 bytes/item" in printed and "910.2x for a 2048-d embedding" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["bytes_per_item"] == 9 and report["n_items"] == 2000
    assert [row["layer"] for row in report["per_layer"]] == [1, 2, 3]
    for row in report["per_layer"]:
        assert row["fit_max_size"] <= row["fit_capacity"]
        assert 0.0 < row["items_balance"]["entropy_ratio"] <= 1.0
    # The items' cosine after each layer is the one measured while encoding them (fit_summary.json).
    summary = json.loads((fitted_dir / "fit_summary.json").read_text())
    assert [row["items_cosine"] for row in report["per_layer"]] == summary["items"]["reconstruction_cosine"]
    assert (out / "error_per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| layer | k |" in (out / "report.md").read_text()


def test_report_re_measures_on_given_embeddings(fitted_dir, tmp_path):
    new = clustered_embeddings(500, 24, n_topics=4, clusters_per_topic=4, rank=4, seed=3, sample_seed=9)
    report = build_report(fitted_dir, new)
    assert report["n_items"] == 500 and report["items_source"] == "embeddings given to report"
    cosines = [row["items_cosine"] for row in report["per_layer"]]
    assert cosines == sorted(cosines) and cosines[0] > 0.5


def test_report_without_summary_reports_code_balance_only(fitted_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("codebook.safetensors", "codes.safetensors"):
        (bare / name).write_bytes((fitted_dir / name).read_bytes())
    report = build_report(bare)
    assert all(row["items_cosine"] is None and row["items_balance"] for row in report["per_layer"])


def test_config_file_and_flags(tmp_path, embeddings_file):
    path, _ = embeddings_file
    config = tmp_path / "cb.yaml"
    config.write_text("variant: euclidean\nlayers: 2\nk: 8\nkmeans_iters: 3\n")
    out = tmp_path / "eu"
    argv = ["codebook", "fit", "--embeddings", str(path), "--config", str(config), "--k", "8,12"]
    assert run([*argv, "--out", str(out)]) == 0
    book = ResidualCodebook.load(out / "codebook.safetensors")
    assert book.config.variant == "euclidean" and book.config.ks == [8, 12]
    assert book.config.kmeans_iters == 3  # from the file; --k overrode the file's k
    _, scales = load_codes(out / "codes.safetensors")
    assert scales is None


def test_safetensors_embeddings_and_key(tmp_path, embeddings_file):
    _, x = embeddings_file
    path = tmp_path / "items.safetensors"
    save_file({"item_embeddings": x, "ids": np.arange(len(x))}, str(path))
    np.testing.assert_array_equal(load_embeddings(path, "item_embeddings"), x)
    with pytest.raises(CodebookError, match="no tensor 'embeddings'"):
        load_embeddings(path)
    out = tmp_path / "st"
    argv = ["codebook", "fit", "--embeddings", str(path), "--key", "item_embeddings", "--k", "8",
            "--scale-dtype", "uint4", "--no-balance", "--out", str(out)]
    assert run(argv) == 0
    book = ResidualCodebook.load(out / "codebook.safetensors")
    assert book.config.scale_dtype == "uint4" and not book.config.balanced


def test_cli_errors_are_value_errors(tmp_path, embeddings_file):
    _, x = embeddings_file
    bad = x.copy()
    bad[5, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(CodebookError, match="NaN or inf.*row 5"):
        run(["codebook", "fit", "--embeddings", str(tmp_path / "bad.npy"), "--k", "8",
             "--out", str(tmp_path / "o")])
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(CodebookError, match=".npy or .safetensors"):
        load_embeddings(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="unknown key"):
        (tmp_path / "c.yaml").write_text("layer: 3\n")
        run(["codebook", "fit", "--embeddings", "unused.npy", "--config", str(tmp_path / "c.yaml"),
             "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        run(["codebook", "fit", "--embeddings", "e.npy", "--k", "many", "--out", "o"])
    with pytest.raises(FileNotFoundError):
        run(["codebook", "report", str(tmp_path / "missing")])


def test_importing_the_report_module_leaves_matplotlib_alone():
    """No backend is chosen and nothing of matplotlib is loaded until a figure is drawn."""
    code = "import sys, hymirec.codebook.report; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_top_k_cosine_matches_brute_force_across_blocks():
    rng = np.random.default_rng(0)
    db = rng.standard_normal((500, 8)).astype(np.float32)
    queries = np.array([3, 77, 499])
    blocks = [(start, db[start : start + 64]) for start in range(0, 500, 64)]
    found = top_k_cosine(db[queries], blocks, 5, exclude=queries)
    unit = db / np.linalg.norm(db, axis=1, keepdims=True)
    sims = unit[queries] @ unit.T
    sims[np.arange(3), queries] = -np.inf
    np.testing.assert_array_equal(found, np.argsort(-sims, axis=1)[:, :5])
    assert neighbour_recall(found, found) == 1.0
    assert neighbour_recall(found, found[:, ::-1]) == 1.0
    assert neighbour_recall(found, found + 1000) == 0.0
    partly = np.column_stack([found[:, :2], found[:, 2:] + 1000])
    assert neighbour_recall(found, partly) == pytest.approx(0.4)


def test_balance_measures():
    even = balance([10, 10, 10, 10])
    assert even == {
        "max_over_mean": 1.0, "min_over_mean": 1.0, "empty": 0, "entropy_ratio": pytest.approx(1.0)
    }
    skewed = balance([40, 0, 0, 0])
    assert skewed["max_over_mean"] == 4.0 and skewed["empty"] == 3 and skewed["entropy_ratio"] == 0.0


def test_config_round_trips_through_json():
    config = CodebookConfig(variant="euclidean", layers=2, k=[8, 16], scale_dtype="uint8", seed=5)
    assert CodebookConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
