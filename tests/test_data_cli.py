import argparse
import json

import pytest
from data_samples import (
    write_grouplens,
    write_grouplens_zip,
    write_ml_latest,
    write_ml_latest_zip,
    write_recbole,
)

from hymirec.data.cli import register
from hymirec.data.dataset import DataError, InteractionDataset


def run(argv, capsys):
    """Parse ``argv`` with a root parser holding only the data command; return (code, stdout)."""
    parser = argparse.ArgumentParser(prog="hymirec")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    "name, write_zip",
    [("movielens-100k", write_grouplens_zip), ("movielens-small", write_ml_latest_zip)],
)
def test_fetch(tmp_path, capsys, name, write_zip):
    url = write_zip(tmp_path / "archive.zip").as_uri()
    code, out = run(["data", "fetch", name, "--data-dir", str(tmp_path / "d"), "--url", url], capsys)
    assert code == 0
    assert f"saved {name} to {tmp_path / 'd' / name}" in out
    assert "| users " in out


def test_load_movielens_small_is_named_after_its_format(tmp_path, capsys):
    write_ml_latest(tmp_path / "src", gz=True)
    argv = ["data", "load", "movielens-small", "--path", str(tmp_path / "src"), "--data-dir", str(tmp_path)]
    code, out = run(argv, capsys)
    assert code == 0
    assert f"saved movielens-small to {tmp_path / 'movielens-small'}" in out
    assert InteractionDataset.load(tmp_path / "movielens-small").n_users == 3
    with pytest.raises(DataError, match="load hllm-csv needs --name"):
        run(["data", "load", "hllm-csv", "--data-dir", str(tmp_path)], capsys)


@pytest.mark.parametrize("layout", [write_grouplens, write_recbole])
def test_load_movielens_100k(tmp_path, capsys, layout):
    layout(tmp_path / "src")
    code, _ = run(
        [
            "data",
            "load",
            "movielens-100k",
            "--path",
            str(tmp_path / "src"),
            "--name",
            "ml",
            "--data-dir",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    assert InteractionDataset.load(tmp_path / "ml").n_items == 7


def test_load_other_formats_with_options(tmp_path, capsys):
    (tmp_path / "ratings.dat").write_text("1::1::5::10\n2::9::3::11\n")
    (tmp_path / "movies.dat").write_text("1::A (1990)::Drama\n")
    argv = [
        "data",
        "load",
        "movielens-1m",
        "--path",
        str(tmp_path),
        "--name",
        "m1",
        "--data-dir",
        str(tmp_path),
    ]
    with pytest.raises(DataError, match="ratings.dat:2: item id '9'"):
        run(argv, capsys)
    assert run([*argv, "--on-unknown-item", "drop"], capsys)[0] == 0
    assert InteractionDataset.load(tmp_path / "m1").repairs == {
        "interactions_with_unknown_item_dropped": 1
    }

    (tmp_path / "i.csv").write_text("item_id,user_id,timestamp\na,u,1\n")
    (tmp_path / "t.csv").write_text("item_id,title,tag,description\na,A,x,y\n")
    argv = [
        "data",
        "load",
        "hllm-csv",
        "--name",
        "h",
        "--data-dir",
        str(tmp_path),
        "--interactions",
        str(tmp_path / "i.csv"),
    ]
    with pytest.raises(DataError, match="needs --interactions FILE and --items FILE"):
        run(argv, capsys)
    assert run([*argv, "--items", str(tmp_path / "t.csv")], capsys)[0] == 0
    # HLLM's Amazon Books item file has no tag column; --text-fields picks the columns.
    (tmp_path / "books.csv").write_text("item_id,description,title\na,Long text,A\n")
    assert run([*argv, "--items", str(tmp_path / "books.csv"), "--text-fields", "title,description"], capsys)[0] == 0
    assert InteractionDataset.load(tmp_path / "h").text_fields == ["title", "description"]
    with pytest.raises(DataError, match=r"missing column\(s\) \['tag'\]"):
        run([*argv, "--items", str(tmp_path / "books.csv"), "--text-fields", "title,tag"], capsys)

    write_recbole(tmp_path / "rb")
    argv = [
        "data",
        "load",
        "recbole",
        "--path",
        str(tmp_path / "rb" / "ml-100k"),
        "--name",
        "r",
        "--data-dir",
        str(tmp_path),
    ]
    assert run(argv, capsys)[0] == 0
    assert InteractionDataset.load(tmp_path / "r").text_fields == [
        "movie_title",
        "release_year",
        "class",
    ]
    with pytest.raises(DataError, match="needs --path"):
        run(["data", "load", "recbole", "--name", "r"], capsys)


def test_synthetic_then_stats(tmp_path, capsys):
    argv = ["data", "synthetic", "--name", "syn", "--users", "50", "--items", "100", "--clusters", "4",
            "--interests", "1", "2", "--seed", "7", "--data-dir", str(tmp_path)]  # fmt: skip
    assert run(argv, capsys)[0] == 0
    code, out = run(["data", "stats", "syn", "--json", "--data-dir", str(tmp_path)], capsys)
    stats = json.loads(out)
    assert (code, stats["users"], stats["items"]) == (0, 50, 100)
    code, out = run(
        ["data", "stats", "syn", str(tmp_path / "syn"), "--json", "--data-dir", str(tmp_path)],
        capsys,
    )
    assert len(json.loads(out)) == 2
    code, out = run(["data", "stats", "syn", "--data-dir", str(tmp_path)], capsys)
    assert out.splitlines()[0].split("|")[2].strip() == "syn"


def test_stats_of_unknown_dataset(tmp_path, capsys):
    with pytest.raises(DataError, match="hymirec data synthetic --name nope"):
        run(["data", "stats", "nope", "--data-dir", str(tmp_path)], capsys)
