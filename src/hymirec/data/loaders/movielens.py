"""MovieLens-100K (GroupLens or RecBole layout) and MovieLens-1M.

All three give the item text fields ``title``, ``year`` and ``genres``:

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
title, so one title rule serves both. Ratings are not kept: every rating is an interaction.
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


def movielens_100k_layout(path: str | Path) -> tuple[str, Path]:
    """``("grouplens", folder)`` or ``("recbole", folder)``: where MovieLens-100K's files are in
    ``path`` (or its ``ml-100k`` sub-folder, as the archives unpack)."""
    path = Path(path)
    for folder in (path, path / "ml-100k"):
        for layout, files in (("grouplens", GROUPLENS_100K_FILES), ("recbole", RECBOLE_100K_FILES)):
            if all((folder / f).is_file() for f in files):
                return layout, folder
    raise DataError(
        f"{path}: no MovieLens-100K files: expected {' + '.join(GROUPLENS_100K_FILES)} "
        f"(GroupLens) or {' + '.join(RECBOLE_100K_FILES)} (RecBole)"
    )


def load_movielens_100k(
    path: str | Path, *, name: str = "movielens-100k", options: LoadOptions = LoadOptions()
) -> InteractionDataset:
    """Load MovieLens-100K from a folder in either layout (see ``movielens_100k_layout``).

    Items are numbered in item-file order (so canonical id = MovieLens id), users in order of
    first appearance in the interactions file; interaction rows keep file order.
    """
    layout, folder = movielens_100k_layout(path)
    if layout == "grouplens":
        inter = read_delimited(
            folder / "u.data", sep="\t", names=("user_id", "item_id", "rating", "timestamp"),
            encoding="latin-1",
        )
        items = read_delimited(
            folder / "u.item", sep="|",
            names=("item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES),
            encoding="latin-1",
        )  # fmt: skip
        full_title = items.frame["title"]
        genres = _genres_from_flags(items)
    else:
        inter, _ = read_atomic(folder / "ml-100k.inter")
        inter.require(["user_id", "item_id", "timestamp"])
        items, _ = read_atomic(folder / "ml-100k.item")
        items.require(["item_id", "movie_title", "release_year", "class"])
        movie_title = items.frame["movie_title"].str.strip()
        year = items.frame["release_year"].str.strip()
        placeholder = (movie_title == _RECBOLE_PLACEHOLDER) & (year == _RECBOLE_PLACEHOLDER)
        full_title = (movie_title + " (" + year + ")").where(~placeholder, "unknown")
        genres = items.frame["class"].str.split().str.join(", ")
    title, year = split_title(full_title)
    return build_dataset(
        name,
        ItemTable(items, "item_id", {"title": title, "year": year, "genres": genres}),
        InteractionTable(inter, "user_id", "item_id", "timestamp"),
        options,
    )


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
    title, year = split_title(items.frame["title"])
    genres = items.frame["genres"].str.strip().str.split("|").str.join(", ")
    return build_dataset(
        name,
        ItemTable(items, "item_id", {"title": title, "year": year, "genres": genres}),
        InteractionTable(inter, "user_id", "item_id", "timestamp"),
        options,
    )


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
