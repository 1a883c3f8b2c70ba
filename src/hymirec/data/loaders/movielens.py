"""MovieLens-100K (GroupLens or RecBole layout), MovieLens-1M and the MovieLens "latest" releases
(``ml-latest-small``, which ``hymirec data fetch movielens-small`` downloads, and ``ml-latest``).

All of them give the item text fields ``title``, ``year`` and ``genres``:

* ``title``: the movie title without its ``(YYYY)`` year group, e.g. ``Toy Story`` and
  ``Shanghai Triad (Yao a yao yao dao waipo qiao)``; other parenthesised groups stay
  (``... Great Giving (V)``).
* ``year``: the four digits of that group, ``""`` when the title has none. It comes from the
  title and not from GroupLens' release-date column because the RecBole copy keeps only the title
  year, and the two differ (item 10, *Richard III (1995)*, was released 22-Jan-1996): taking the
  title year on both paths is what makes the two sources give the same dataset.
* ``genres``: genre names joined by ``", "`` in the source's genre order.

MovieLens-100K's two layouts hold the same data: GroupLens' ``u.data`` (tab-separated
``user item rating timestamp``) with ``u.item`` (``|``-separated, latin-1: id, title, release
date, video date, URL, 19 genre flags); and RecBole's ``ml-100k.inter``/``ml-100k.item``, where
the title's last ``(...)`` group was split off into ``release_year`` and the genres are a
space-separated ``class`` column. Re-joining ``movie_title (release_year)`` restores the GroupLens
title, so one title rule serves both.

Every MovieLens format has integer user and movie ids (anything else is an error naming its line)
and a ``timestamp`` per rating. Ratings are not kept: every rating is an interaction, whatever
its value. Items are numbered in movie-file order and movies nobody rated are kept (retrieval
candidates), as for every loader (see ``hymirec.data.loaders.build``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.loaders.build import InteractionTable, ItemTable, LoadOptions, build_dataset
from hymirec.data.loaders.recbole import read_atomic
from hymirec.data.loaders.table import DelimitedFile, read_delimited

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
GROUPLENS_100K_FILES = ("u.data", "u.item")
RECBOLE_100K_FILES = ("ml-100k.inter", "ml-100k.item")
LATEST_FILES = ("ratings.csv", "movies.csv")
LATEST_SUBFOLDERS = ("ml-latest-small", "ml-latest")
# RecBole's converter wrote this misspelling as both title and year of the one movie GroupLens
# calls "unknown" (item 267, which has no year): map it back so both layouts agree.
_RECBOLE_PLACEHOLDER = "unkonwn"
_TITLE_YEAR = r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)(?P<rest>(?:\s*\([^()]*\))*)\s*$"


def split_title(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", "1995")``; the year group is the last
    ``(YYYY)`` that only other parenthesised groups follow; no year group -> ``(title, "")``."""
    raw = raw.str.strip()
    parts = raw.str.extract(_TITLE_YEAR)
    matched = parts["year"].notna()
    title = (parts["title"] + parts["rest"]).where(matched, raw)
    return title.astype("str"), parts["year"].fillna("").astype("str")


def find_files(
    path: str | Path, what: str, layouts: dict[str, tuple[str, ...]], subfolders: tuple[str, ...]
) -> tuple[str, list[Path]]:
    """``(layout, files)`` for the first of ``layouts`` (``{layout: file names}``) whose files are
    all in ``path`` or one of its ``subfolders`` (as the archives unpack); any file may also be
    gzipped (``NAME.gz``). Raise ``DataError`` saying which ``what`` files were expected."""
    path = Path(path)
    for folder in (path, *(path / sub for sub in subfolders)):
        for layout, names in layouts.items():
            found = [_plain_or_gz(folder / name) for name in names]
            if all(found):
                return layout, found
    expected = " or ".join(f"{' + '.join(names)} ({layout})" for layout, names in layouts.items())
    raise DataError(
        f"{path}: no {what} files: expected {expected}, each plain or .gz, there or in "
        f"{' or '.join(f'{sub}/' for sub in subfolders)}"
    )


def load_movielens_100k(
    path: str | Path, *, name: str = "movielens-100k", options: LoadOptions = LoadOptions()
) -> InteractionDataset:
    """Load MovieLens-100K from a folder (or its ``ml-100k`` sub-folder) in either layout.

    Items are numbered in item-file order (so canonical id = MovieLens id), users in order of
    first appearance in the interactions file; interaction rows keep file order.
    """
    layout, (inter_path, item_path) = find_files(
        path, "MovieLens-100K",
        {"GroupLens": GROUPLENS_100K_FILES, "RecBole": RECBOLE_100K_FILES}, ("ml-100k",),
    )  # fmt: skip
    if layout == "GroupLens":
        inter = read_delimited(
            inter_path, sep="\t", names=("user_id", "item_id", "rating", "timestamp"),
            encoding="latin-1",
        )
        items = read_delimited(
            item_path, sep="|",
            names=("item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES),
            encoding="latin-1",
        )  # fmt: skip
        full_title = items.frame["title"]
        genres = _genres_from_flags(items)
    else:
        inter, _ = read_atomic(inter_path)
        inter.require(["user_id", "item_id", "timestamp"])
        items, _ = read_atomic(item_path)
        items.require(["item_id", "movie_title", "release_year", "class"])
        movie_title = items.frame["movie_title"].str.strip()
        year = items.frame["release_year"].str.strip()
        placeholder = (movie_title == _RECBOLE_PLACEHOLDER) & (year == _RECBOLE_PLACEHOLDER)
        full_title = (movie_title + " (" + year + ")").where(~placeholder, "unknown")
        genres = items.frame["class"].str.split().str.join(", ")
    return _movielens_dataset(name, items, "item_id", full_title, genres, inter, "user_id", options)


def load_movielens_1m(
    path: str | Path, *, name: str = "movielens-1m", options: LoadOptions = LoadOptions()
) -> InteractionDataset:
    """Load MovieLens-1M from a folder with ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``)
    and ``movies.dat`` (``MovieID::Title::Genres``, latin-1, genres ``|``-separated).

    Items are numbered in ``movies.dat`` order, users in order of first appearance in
    ``ratings.dat``; interaction rows keep file order.
    """
    folder = Path(path)
    inter = read_delimited(
        folder / "ratings.dat", sep="::", names=("user_id", "item_id", "rating", "timestamp"),
        encoding="latin-1",
    )  # fmt: skip
    items = read_delimited(
        folder / "movies.dat", sep="::", names=("item_id", "title", "genres"), encoding="latin-1"
    )
    genres = _joined_genres(items.frame["genres"])
    title = items.frame["title"]
    return _movielens_dataset(name, items, "item_id", title, genres, inter, "user_id", options)


def load_movielens_latest(
    path: str | Path, *, name: str = "movielens-small", options: LoadOptions = LoadOptions()
) -> InteractionDataset:
    """Load a MovieLens "latest" release (``ml-latest-small``, ``ml-latest``) from a folder (or its
    ``ml-latest-small``/``ml-latest`` sub-folder) with ``ratings.csv`` (header
    ``userId,movieId,rating,timestamp``) and ``movies.csv`` (``movieId,title,genres``; UTF-8, CSV
    quoting, genres ``|``-separated, ``(no genres listed)`` kept as it is), each plain or ``.gz``.

    Items are numbered in ``movies.csv`` order, users in order of first appearance in
    ``ratings.csv``; interaction rows keep file order.
    """
    _, (ratings_path, movies_path) = find_files(
        path, "MovieLens latest", {"ml-latest": LATEST_FILES}, LATEST_SUBFOLDERS
    )
    ratings = read_delimited(ratings_path, sep=",", quoted=True)
    ratings.require(["userId", "movieId", "timestamp"])
    movies = read_delimited(movies_path, sep=",", quoted=True)
    movies.require(["movieId", "title", "genres"])
    return _movielens_dataset(
        name, movies, "movieId", movies.frame["title"], _joined_genres(movies.frame["genres"]),
        ratings, "userId", options,
    )  # fmt: skip


def _movielens_dataset(
    name: str,
    movies: DelimitedFile,
    movie_id: str,
    full_title: pd.Series,
    genres: pd.Series,
    ratings: DelimitedFile,
    user_id: str,
    options: LoadOptions,
) -> InteractionDataset:
    """The canonical dataset of parsed MovieLens files: ``movies`` with ids in ``movie_id``,
    ``full_title`` as ``"Title (YYYY)"`` and ``genres`` aligned with its rows; ``ratings`` with
    ids in ``user_id`` and ``movie_id`` and times in ``timestamp``."""
    movies.require_integers([movie_id])
    ratings.require_integers([user_id, movie_id])
    title, year = split_title(full_title)
    return build_dataset(
        name,
        ItemTable(movies, movie_id, {"title": title, "year": year, "genres": genres}),
        InteractionTable(ratings, user_id, movie_id, "timestamp"),
        options,
    )


def _joined_genres(genres: pd.Series) -> pd.Series:
    """``"Animation|Children's"`` -> ``"Animation, Children's"``."""
    return genres.str.strip().str.split("|").str.join(", ")


def _plain_or_gz(path: Path) -> Path | None:
    gz = path.with_name(path.name + ".gz")
    return path if path.is_file() else gz if gz.is_file() else None


def _genres_from_flags(items: DelimitedFile) -> pd.Series:
    """``"Animation, Children's, Comedy"`` from u.item's 19 ``0``/``1`` genre columns."""
    flags = items.frame[list(ML100K_GENRES)].apply(lambda c: c.str.strip()).to_numpy()
    valid = (flags == "0") | (flags == "1")
    if not valid.all():
        row, col = (int(i[0]) for i in np.nonzero(~valid))
        raise DataError(
            f"{items.at(row)}: genre flag {ML100K_GENRES[col]!r} is {flags[row, col]!r}, not 0 or 1"
        )
    names = np.asarray(ML100K_GENRES, dtype=object)
    return pd.Series([", ".join(names[row]) for row in flags == "1"], dtype="str")
