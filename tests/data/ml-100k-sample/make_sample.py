"""Writes the MovieLens-100K-format sample next to this file: ``grouplens/u.data`` + ``u.item`` and
the same data in RecBole's layout, ``recbole/ml-100k.inter`` + ``ml-100k.item``.

The ratings are made up (seeded, so running this again gives the same bytes): 30 users, 40 movies,
300 ratings; nothing of the real MovieLens-100K is copied, whose licence does not allow
redistribution. The files keep the real ones' formats and quirks: ``u.data`` in no particular
order, users rating several movies within one second (one timestamp), movies nobody rated,
a latin-1 title, titles with several parenthesised groups, ``(V)`` after the year, a release date
whose year is not the title's, and the ``unknown`` movie (RecBole: ``unkonwn``).

Run: ``python tests/data/ml-100k-sample/make_sample.py``; the tests read the files it wrote.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()
QUIRKS = {  # movie id: (GroupLens title, release date, genres)
    1: ("Toy Story (1995)", "01-Jan-1995", ("Animation", "Children's", "Comedy")),
    6: ("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", "01-Jan-1995", ("Drama",)),
    10: ("Richard III (1995)", "22-Jan-1996", ("Drama", "War")),
    17: ("unknown", "", ("unknown",)),
    23: ("Misérables, Les (1995)", "01-Jan-1995", ("Drama", "Musical")),
    31: ("Land Before Time III: The Time of the Great Giving (1995) (V)", "01-Jan-1995",
         ("Animation", "Children's")),
}  # fmt: skip
N_USERS, N_MOVIES, N_RATINGS = 30, 40, 300
UNRATED = {38, 40}


def movies(rng: random.Random) -> list[tuple[int, str, str, tuple[str, ...]]]:
    rows = []
    for movie in range(1, N_MOVIES + 1):
        if movie in QUIRKS:
            rows.append((movie, *QUIRKS[movie]))
            continue
        year = rng.randint(1930, 1998)
        genres = tuple(sorted(rng.sample(GENRES[1:], rng.randint(1, 3)), key=GENRES.index))
        rows.append((movie, f"Sample Movie {movie} ({year})", f"01-Jan-{year}", genres))
    return rows


def ratings(rng: random.Random) -> list[tuple[int, int, int, int]]:
    """Every user rates at least 5 movies, in sessions of 1-4 ratings that share one timestamp."""
    raters = list(range(1, N_USERS + 1))
    per_user = {u: 5 for u in raters}
    for u in rng.choices(raters, k=N_RATINGS - 5 * N_USERS):
        per_user[u] += 1
    rateable = [m for m in range(1, N_MOVIES + 1) if m not in UNRATED]
    rows = []
    for user, n in per_user.items():
        seen = rng.sample(rateable, min(n, len(rateable)))
        t = rng.randint(874_724_710, 893_286_638 - 10_000_000)
        i = 0
        while i < len(seen):
            session = rng.randint(1, 4)
            rows += [(user, m, rng.randint(1, 5), t) for m in seen[i : i + session]]
            i += session
            t += rng.randint(1, 200_000)
    rng.shuffle(rows)
    return rows


def recbole_title(title: str) -> tuple[str, str]:
    """RecBole split the title's last ``(...)`` group off as the year; ``unknown`` became ``unkonwn``."""
    if title == "unknown":
        return "unkonwn", "unkonwn"
    match = re.fullmatch(r"(.*) \(([^()]*)\)", title)
    assert match, title
    return match.group(1), match.group(2)


def main() -> None:
    here = Path(__file__).parent
    rng = random.Random(100)
    items, inter = movies(rng), ratings(rng)
    assert len(inter) == N_RATINGS
    gl, rb = here / "grouplens", here / "recbole"
    gl.mkdir(exist_ok=True)
    rb.mkdir(exist_ok=True)
    (gl / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in inter))
    lines = [
        f"{m}|{title}|{date}||http://us.imdb.com/M/title-exact?{m}|"
        + "|".join("1" if g in genres else "0" for g in GENRES) + "\n"
        for m, title, date, genres in items
    ]
    (gl / "u.item").write_bytes("".join(lines).encode("latin-1"))
    rb_inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    (rb / "ml-100k.inter").write_text(rb_inter + "".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in inter))
    rb_item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    rb_item += "".join(
        "\t".join((str(m), *recbole_title(title), " ".join(genres))) + "\n" for m, title, _, genres in items
    )
    (rb / "ml-100k.item").write_text(rb_item, encoding="utf-8")


if __name__ == "__main__":
    main()
