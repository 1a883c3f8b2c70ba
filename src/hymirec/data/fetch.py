"""Fetching known datasets into the data directory, and loading any dataset by name or path.

Each known dataset (``KNOWN``) is fetched from its canonical GroupLens archive; when that host
cannot be reached (as on machines that only reach the package index) it falls back to a copy
that a wheel on the package index carries, downloaded with ``pip download`` and read with
``zipfile`` (the package is never installed or imported):

* ``movielens-100k``: ``ml-100k.zip``, or the RecBole files in the ``recbole==1.2.1`` wheel. Both
  sources give the identical dataset (see ``hymirec.data.loaders.movielens``).
* ``movielens-small``: ``ml-latest-small.zip`` (``ratings.csv``, ``movies.csv``), or the gzipped
  copies of the same two files in the ``mlba==2.0.5`` wheel, gunzipped on the way out.

The raw files are cached under ``DATA_DIR/raw/NAME/`` with their SHA-256 and their source in
``manifest.json``; a cache that verifies is never downloaded again, a corrupted one is fetched
again with a warning. The canonical dataset is then written to ``DATA_DIR/NAME/``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from hymirec.data import paths
from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.loaders.movielens import load_movielens_100k, load_movielens_latest
from hymirec.io import replaced_dir

log = logging.getLogger(__name__)

GROUPLENS_ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_ML100K_MEMBERS = {"u.data": "ml-100k/u.data", "u.item": "ml-100k/u.item"}
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_ML100K_MEMBERS = {
    "ml-100k.inter": "recbole/dataset_example/ml-100k/ml-100k.inter",
    "ml-100k.item": "recbole/dataset_example/ml-100k/ml-100k.item",
}
GROUPLENS_ML_SMALL_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
GROUPLENS_ML_SMALL_MEMBERS = {
    "ratings.csv": "ml-latest-small/ratings.csv",
    "movies.csv": "ml-latest-small/movies.csv",
}
MLBA_REQUIREMENT = "mlba==2.0.5"
MLBA_ML_SMALL_MEMBERS = {
    "ratings.csv": "mlba/csvFiles/MovieLensRatings.csv.gz",
    "movies.csv": "mlba/csvFiles/MovieLensMovies.csv.gz",
}
MANIFEST = "manifest.json"
ML100K = "movielens-100k"
ML_SMALL = "movielens-small"

RawSource = Callable[[Path], str]
"""Writes a dataset's raw files into the given (empty) folder and returns where they came from."""


class SourceUnavailable(OSError):
    """A download source could not be reached (network, DNS, HTTP error)."""


def download(url: str, dest: Path, timeout: float) -> None:
    """Stream ``url`` (``http(s)://`` or ``file://``) to ``dest`` with a progress bar; raise
    ``SourceUnavailable`` when it cannot be read."""
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as response,
            dest.open("wb") as out,
            tqdm(
                total=int(response.headers.get("Content-Length") or 0) or None,
                unit="B",
                unit_scale=True,
                desc=f"downloading {url.rsplit('/', 1)[-1]}",
                disable=None,
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        raise SourceUnavailable(f"{url}: {getattr(exc, 'reason', exc)}") from exc


def grouplens_source(url: str, members: dict[str, str], timeout: float = 10.0) -> RawSource:
    """The zip archive at ``url`` (GroupLens' ``ml-100k.zip``, ...) as a raw source: its
    ``members`` (see ``extract_members``)."""

    def fetch(folder: Path) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "archive.zip"
            download(url, archive, timeout)
            extract_members(archive, members, folder)
        return url

    return fetch


def wheel_source(requirement: str, members: dict[str, str]) -> RawSource:
    """The ``members`` (see ``extract_members``) of the wheel of ``requirement`` that
    ``pip download`` fetches from the package index (no dependencies, nothing installed)."""

    def fetch(folder: Path) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            log.info("downloading the %s wheel from the package index", requirement)
            command = [
                sys.executable, "-m", "pip", "download", requirement, "--no-deps",
                "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d", tmp,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                raise SourceUnavailable(
                    f"`{' '.join(command[2:])}` failed (exit {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-2000:]}"
                )
            extract_members(wheels[0], members, folder)
        return f"{requirement} wheel from the package index"

    return fetch


recbole_wheel_source = wheel_source(RECBOLE_REQUIREMENT, RECBOLE_ML100K_MEMBERS)
"""MovieLens-100K's RecBole files out of the ``recbole==1.2.1`` wheel (about 2 MB)."""
mlba_wheel_source = wheel_source(MLBA_REQUIREMENT, MLBA_ML_SMALL_MEMBERS)
"""MovieLens-latest-small's ``ratings.csv``/``movies.csv`` out of the ``mlba==2.0.5`` wheel (about 19 MB)."""


def extract_members(archive: Path, members: dict[str, str], folder: Path) -> None:
    """Copy ``members`` (``{file name: path inside the zip}``) out of ``archive`` into ``folder``;
    a member ending in ``.gz`` whose file name does not is gunzipped on the way."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            for target, member in members.items():
                if member not in names:
                    raise DataError(f"{archive}: has no {member}")
                gunzip = member.endswith(".gz") and not target.endswith(".gz")
                with zf.open(member) as src, (folder / target).open("wb") as dst:
                    try:
                        shutil.copyfileobj(gzip.GzipFile(fileobj=src) if gunzip else src, dst)
                    except (OSError, EOFError, zlib.error) as exc:
                        raise DataError(f"{archive}: {member} is not valid gzip ({exc})") from exc
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a valid zip archive ({exc})") from exc


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cached_raw_files(folder: Path) -> bool:
    """True when ``folder`` holds raw files whose checksums match its manifest. A folder that
    exists but does not verify is reported with a warning (it will be fetched again)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        if folder.exists():
            log.warning("%s has no %s (interrupted fetch?); fetching again", folder, MANIFEST)
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        log.warning("%s is unreadable; fetching again", manifest)
        return False
    for name, digest in files.items():
        path = folder / name
        if not path.is_file() or sha256(path) != digest:
            log.warning("cached %s is missing or corrupted (SHA-256 mismatch); fetching again", path)
            return False
    return True


def fetch_raw(folder: Path, primary: RawSource, fallback: RawSource) -> None:
    """Fill ``folder`` from ``primary``, or from ``fallback`` when ``primary`` is unreachable,
    and record the files' SHA-256 in its manifest. The folder appears only once complete."""
    with replaced_dir(folder) as staging:
        try:
            source = primary(staging)
        except SourceUnavailable as exc:
            log.warning("cannot reach %s; trying the fallback source", exc)
            for leftover in staging.iterdir():
                leftover.unlink()
            try:
                source = fallback(staging)
            except SourceUnavailable as fallback_exc:
                raise DataError(
                    f"could not fetch {folder.name}: the primary source is unreachable ({exc}) "
                    f"and so is the fallback ({fallback_exc})"
                ) from fallback_exc
        files = {p.name: sha256(p) for p in sorted(staging.iterdir())}
        fetched = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = {"name": folder.name, "source": source, "fetched_at": fetched, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        log.info("%s: raw files from %s", folder.name, source)


@dataclass(frozen=True)
class KnownDataset:
    """A dataset that can be downloaded by name: the zip archive at ``url`` with the raw files
    ``members`` (``{file name: path inside the zip}``), the ``fallback`` source used when that
    archive is unreachable (it must write the same file names, or others ``load`` reads), and
    ``load(raw_folder, name=...)``, which converts the raw folder."""

    name: str
    url: str
    members: dict[str, str]
    fallback: RawSource
    load: Callable[..., InteractionDataset]

    def fetch(
        self,
        data_dir: str | Path | None = None,
        *,
        url: str | None = None,
        timeout: float = 10.0,
        fallback: RawSource | None = None,
        force: bool = False,
    ) -> InteractionDataset:
        """Fetch (or reuse the verified cache of) the raw files, convert and save them.

        ``data_dir`` is the data directory (see ``hymirec.data.paths.data_dir``). The archive at
        ``url`` (default: ``self.url``) is tried first with ``timeout`` seconds; ``fallback``
        (default: ``self.fallback``) is used when it is unreachable. ``force`` fetches again even
        when the cache verifies. Returns the canonical dataset, also saved to ``DATA_DIR/NAME``.
        """
        raw = paths.raw_path(self.name, data_dir)
        if force or not cached_raw_files(raw):
            primary = grouplens_source(url or self.url, self.members, timeout)
            fetch_raw(raw, primary, fallback or self.fallback)
        log.info("converting %s", raw)
        dataset = self.load(raw, name=self.name)
        save_dataset(dataset, paths.dataset_path(self.name, data_dir))
        return dataset


KNOWN = {
    known.name: known
    for known in (
        KnownDataset(
            ML100K, GROUPLENS_ML100K_URL, GROUPLENS_ML100K_MEMBERS, recbole_wheel_source,
            load_movielens_100k,
        ),
        KnownDataset(
            ML_SMALL, GROUPLENS_ML_SMALL_URL, GROUPLENS_ML_SMALL_MEMBERS, mlba_wheel_source,
            load_movielens_latest,
        ),
    )
}  # fmt: skip
"""The datasets that ``hymirec data fetch NAME`` (and ``load_dataset``) can download."""

fetch_movielens_100k = KNOWN[ML100K].fetch
fetch_movielens_small = KNOWN[ML_SMALL].fetch

FETCHERS: dict[str, Callable[..., InteractionDataset]] = {name: k.fetch for name, k in KNOWN.items()}
"""Fetch functions by name (``KnownDataset.fetch``); tests may replace one."""


def fetch(name: str, data_dir: str | Path | None = None, **kwargs) -> InteractionDataset:
    """Fetch a known dataset by name (see ``FETCHERS``) into the data directory ``data_dir``."""
    if name not in FETCHERS:
        raise DataError(f"no fetcher for {name!r}; known: {sorted(FETCHERS)}")
    return FETCHERS[name](data_dir, **kwargs)


def save_dataset(dataset: InteractionDataset, folder: Path) -> Path:
    """Save ``dataset`` to ``folder``, replacing what was there only once the new copy is written."""
    with replaced_dir(folder) as staging:
        dataset.save(staging)
    return folder


def load_dataset(name_or_path: str | Path, data_dir: str | Path | None = None) -> InteractionDataset:
    """A canonical dataset from a folder path, or by name from the data directory.

    A known downloadable name (``movielens-100k``, ``movielens-small``) is fetched on first use. Any other name must
    have been created before (``hymirec data load`` / ``hymirec data synthetic``).
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if (path / "meta.json").is_file():
        return InteractionDataset.load(path)
    if os.sep in text or "/" in text or text.startswith("."):
        raise DataError(f"{path}: not a hymirec dataset folder (no meta.json)")
    folder = paths.dataset_path(text, data_dir)
    if (folder / "meta.json").is_file():
        return InteractionDataset.load(folder)
    if text in FETCHERS:
        return FETCHERS[text](data_dir)
    raise DataError(
        f"unknown dataset {text!r}: there is no {folder}. Create it with "
        f"`hymirec data load FORMAT --name {text} ...` (FORMAT: movielens-100k, movielens-1m, "
        f"movielens-small, hllm-csv, recbole) or `hymirec data synthetic --name {text}`, or give a dataset folder; "
        f"downloadable by name: {sorted(FETCHERS)}"
    )
