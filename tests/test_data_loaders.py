import re

import numpy as np
import pandas as pd
import pytest
from data_samples import (
    EXPECTED_TEXT,
    LATEST_EXPECTED_TEXT,
    LATEST_MOVIES,
    LATEST_RATINGS,
    MOVIES,
    RATINGS,
    write_grouplens,
    write_ml_latest,
    write_recbole,
)

from hymirec.data import paths
from hymirec.data.dataset import DataError
from hymirec.data.fetch import ML_SMALL, cached_raw_files
from hymirec.data.loaders import (
    LoadOptions,
    load_hllm_csv,
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
    load_recbole,
)
from hymirec.data.loaders.movielens import split_title
from hymirec.data.loaders.table import read_delimited
from hymirec.data.split import build_sequences


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def hllm(tmp_path, interactions, items, **kwargs):
    kwargs.setdefault("name", "toy")
    return load_hllm_csv(
        write(tmp_path / "inter.csv", interactions), write(tmp_path / "items.csv", items), **kwargs
    )


ITEMS_CSV = "item_id,title,tag,description\na,Alpha,x,first\nb,Beta,y,second\nc,Gamma,z,third\n"


def raises_at(location: str):
    """``pytest.raises(DataError)`` whose message starts with ``file:line``."""
    return pytest.raises(DataError, match="^" + re.escape(location))


# --- MovieLens-100K: both layouts -------------------------------------------------------------


def test_ml100k_layouts_give_the_identical_dataset(tmp_path):
    a = load_movielens_100k(write_grouplens(tmp_path / "gl"))
    b = load_movielens_100k(write_recbole(tmp_path / "rb"))
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.text_fields == b.text_fields == ["title", "year", "genres"]
    assert a.repairs == b.repairs == {}


def test_ml100k_text_fields_and_id_rules(tmp_path):
    ds = load_movielens_100k(write_grouplens(tmp_path))
    items = ds.items.set_index("raw_id")
    for raw, expected in EXPECTED_TEXT.items():
        assert tuple(items.loc[str(raw), ["title", "year", "genres"]]) == expected
    # Items numbered in item-file order; the never-rated item 1373 is kept as a candidate.
    assert list(ds.items["raw_id"]) == [str(m[0]) for m in MOVIES]
    # Users numbered by first appearance in the interactions file.
    assert list(ds.users["raw_id"]) == ["196", "186", "22"]
    # Rows keep file order (time goes backwards, ties stay in place): no sorting.
    raw_item = dict(zip(ds.items["item"], ds.items["raw_id"]))
    raw_user = dict(zip(ds.users["user"], ds.users["raw_id"]))
    rows = [
        (int(raw_user[u]), int(raw_item[i]), t)
        for u, i, t in ds.interactions[["user", "item", "timestamp"]].itertuples(index=False)
    ]
    assert rows == [(u, i, t) for u, i, _, t in RATINGS]
    assert all(ds.interactions.dtypes == np.int64)


def test_ml100k_finds_the_archive_subfolder(tmp_path):
    write_grouplens(tmp_path / "ml-100k")
    assert load_movielens_100k(tmp_path).n_items == len(MOVIES)


def test_ml100k_folder_without_files(tmp_path):
    with pytest.raises(DataError, match="u.data \\+ u.item"):
        load_movielens_100k(tmp_path)


def test_ml100k_bad_genre_flag(tmp_path):
    folder = write_grouplens(tmp_path)
    lines = (folder / "u.item").read_bytes().split(b"\n")
    lines[2] = lines[2][:-1] + b"x"
    (folder / "u.item").write_bytes(b"\n".join(lines))
    with raises_at(f"{folder / 'u.item'}:3"):
        load_movielens_100k(folder)


def test_split_title():
    title, year = split_title(
        pd.Series(["Seven (Se7en) (1995)", "Foo (V)", "M (1931)  ", "1-900 (1994)"])
    )
    assert list(title) == ["Seven (Se7en)", "Foo (V)", "M", "1-900"]
    assert list(year) == ["1995", "", "1931", "1994"]


# --- MovieLens-1M ------------------------------------------------------------------------------


def test_ml1m(tmp_path):
    write(
        tmp_path / "ratings.dat", "10::2::5::978300760\n3::1::3::978302109\n10::1::4::978301968\n"
    )
    write(
        tmp_path / "movies.dat",
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Misérables, Les (1995)::Drama|Musical\n"
        "3::Unrated (1999)::Drama\n",
        encoding="latin-1",
    )
    ds = load_movielens_1m(tmp_path)
    assert ds.items[["title", "year", "genres"]].values.tolist() == [
        ["Toy Story", "1995", "Animation, Children's, Comedy"],
        ["Misérables, Les", "1995", "Drama, Musical"],
        ["Unrated", "1999", "Drama"],
    ]
    assert list(ds.users["raw_id"]) == ["10", "3"]
    assert ds.interactions.values.tolist() == [
        [1, 2, 978300760],
        [2, 1, 978302109],
        [1, 1, 978301968],
    ]


def test_ml1m_wrong_field_count(tmp_path):
    write(tmp_path / "ratings.dat", "1::1::5::978300760\n1::2::5\n")
    write(tmp_path / "movies.dat", "1::A (1995)::Drama\n2::B (1996)::Drama\n")
    with raises_at(f"{tmp_path / 'ratings.dat'}:2: expected 4 fields"):
        load_movielens_1m(tmp_path)


# --- MovieLens latest (ml-latest-small) ----------------------------------------------------------


def test_ml_latest_text_fields_ids_and_tie_order(tmp_path):
    ds = load_movielens_latest(write_ml_latest(tmp_path))
    assert ds.name == "movielens-small"
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (3, 7, 7)
    assert ds.text_fields == ["title", "year", "genres"]
    assert ds.repairs == {}
    # Every movie of movies.csv is an item, in file order; the unrated movie 5 stays a candidate.
    assert list(ds.items["raw_id"]) == [str(m[0]) for m in LATEST_MOVIES]
    items = ds.items.set_index("raw_id")
    for raw, expected in LATEST_EXPECTED_TEXT.items():
        assert tuple(items.loc[str(raw), ["title", "year", "genres"]]) == expected
    # Every rating (0.5 included) is an interaction; rows keep ratings.csv order.
    raw_item = dict(zip(ds.items["item"], ds.items["raw_id"]))
    raw_user = dict(zip(ds.users["user"], ds.users["raw_id"]))
    rows = [
        (int(raw_user[u]), int(raw_item[i]), t)
        for u, i, t in ds.interactions.itertuples(index=False)
    ]
    assert rows == [(u, i, t) for u, i, _, t in LATEST_RATINGS]
    # Sorted by time per user, equal timestamps keep their file order (29 before 1).
    sequences = build_sequences(ds)
    first_user, _ = sequences.user(1)
    assert [int(raw_item[i]) for i in first_user] == [11, 29, 1]
    second_user, _ = sequences.user(2)
    assert [int(raw_item[i]) for i in second_user] == [40697, 1]


def test_ml_latest_gzipped_or_in_the_archive_subfolder(tmp_path):
    plain = load_movielens_latest(write_ml_latest(tmp_path / "plain"))
    write_ml_latest(tmp_path / "unzipped" / "ml-latest-small")
    for folder in (write_ml_latest(tmp_path / "gz", gz=True), tmp_path / "unzipped"):
        other = load_movielens_latest(folder)
        for name in ("interactions", "items", "users"):
            pd.testing.assert_frame_equal(getattr(plain, name), getattr(other, name))


def test_ml_latest_missing_column(tmp_path):
    folder = write_ml_latest(tmp_path)
    write(folder / "ratings.csv", "userId,movieId,rating\n1,1,4.0\n")
    with raises_at(f"{folder / 'ratings.csv'}:1: missing column(s) ['timestamp']"):
        load_movielens_latest(folder)


def test_ml_latest_non_integer_user_id(tmp_path):
    folder = write_ml_latest(tmp_path)
    write(folder / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,5\nu7,1,3.0,6\n")
    with raises_at(f"{folder / 'ratings.csv'}:3: userId 'u7' is not an integer"):
        load_movielens_latest(folder)


def test_ml_latest_folder_without_files(tmp_path):
    with pytest.raises(DataError, match="ratings.csv \\+ movies.csv"):
        load_movielens_latest(tmp_path)


def test_ml_latest_small_real_data():
    """The real ml-latest-small: runs only where ``hymirec data fetch movielens-small`` has
    cached its raw files in the shared data directory (nothing is downloaded here)."""
    raw = paths.raw_path(ML_SMALL)
    if not cached_raw_files(raw):
        pytest.skip(f"no verified MovieLens-latest-small files in {raw}")
    ds = load_movielens_latest(raw)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (610, 9742, 100_836)
    assert ds.interactions["item"].nunique() == 9724
    assert tuple(ds.items.loc[0, ["title", "year"]]) == ("Toy Story", "1995")


# --- HLLM / PixelRec CSV -----------------------------------------------------------------------


def test_hllm_csv_quoting_extra_columns_and_order(tmp_path):
    items = (
        "item_id,views,title,tag,description\n"
        'a,5,Alpha,x,"first, with a comma"\n'
        'b,6,Beta,y,"two\nlines"\n'
        "c,7,Gamma,z,third\n"
    )
    inter = "user_id,timestamp,item_id\nu1,30,b\nu2,10,a\nu1,20,c\n"
    ds = hllm(tmp_path, inter, items)
    assert ds.text_fields == ["title", "tag", "description"]
    assert ds.items["description"].tolist() == ["first, with a comma", "two\nlines", "third"]
    assert ds.interactions.values.tolist() == [[1, 2, 30], [2, 1, 10], [1, 3, 20]]
    assert list(ds.users["raw_id"]) == ["u1", "u2"]


def test_missing_column(tmp_path):
    with raises_at(f"{tmp_path / 'inter.csv'}:1: missing column(s) ['timestamp']"):
        hllm(tmp_path, "item_id,user_id\na,u1\n", ITEMS_CSV)
    with raises_at(f"{tmp_path / 'items.csv'}:1: missing column(s) ['description']"):
        hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\n", "item_id,title,tag\na,A,x\n",
             text_fields=["title", "description"])
    with raises_at(f"{tmp_path / 'items.csv'}:1: missing column(s) ['title']"):
        hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\n", "item_id,name\na,A\n")


def test_hllm_amazon_books_items_without_tag(tmp_path):
    # HLLM's own Amazon Books item file: item_id,description,title (no tag column).
    items = 'item_id,description,title\na,"A tale, told twice",Alpha\nb,,Beta\n'
    ds = hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\nb,u1,2\n", items)
    assert ds.text_fields == ["title", "description"]
    assert ds.items["description"].tolist() == ["A tale, told twice", ""]
    only_title = hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\n", items, text_fields=["title"])
    assert only_title.text_fields == ["title"]


def test_unparsable_timestamp_names_its_line_after_multiline_field(tmp_path):
    items = 'item_id,title,tag,description\na,A,x,"one\ntwo\nthree"\nb,B,y,z\n'
    with raises_at(f"{tmp_path / 'inter.csv'}:4: timestamp 'soon'"):
        hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\n\nb,u1,soon\n", items)


def test_non_integer_timestamp_is_an_error_but_integral_float_is_fine(tmp_path):
    with raises_at(f"{tmp_path / 'inter.csv'}:3: timestamp '2.5'"):
        hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\nb,u1,2.5\n", ITEMS_CSV)
    ds = hllm(tmp_path, "item_id,user_id,timestamp\na,u1,881250949.0\n", ITEMS_CSV)
    assert ds.interactions["timestamp"].tolist() == [881250949]


def test_empty_id_is_an_error(tmp_path):
    with raises_at(f"{tmp_path / 'inter.csv'}:3: empty 'user_id'"):
        hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\nb, ,2\n", ITEMS_CSV)


def test_unknown_item_error_or_drop(tmp_path):
    inter = "item_id,user_id,timestamp\na,u1,1\nzz,u1,2\nb,u2,3\nzz,u3,4\n"
    with raises_at(f"{tmp_path / 'inter.csv'}:3: item id 'zz' is not in"):
        hllm(tmp_path, inter, ITEMS_CSV)
    ds = hllm(tmp_path, inter, ITEMS_CSV, options=LoadOptions(on_unknown_item="drop"))
    assert ds.repairs == {"interactions_with_unknown_item_dropped": 2}
    assert ds.interactions.values.tolist() == [[1, 1, 1], [2, 2, 3]]
    assert list(ds.users["raw_id"]) == ["u1", "u2"]  # u3 had only the dropped row


def test_duplicate_rows_drop_or_error(tmp_path):
    inter = "item_id,user_id,timestamp\na,u1,1\nb,u1,2\na,u1,1\na,u1,3\n"
    ds = hllm(tmp_path, inter, ITEMS_CSV)
    assert ds.repairs == {"duplicate_rows_dropped": 1}
    assert ds.interactions.values.tolist() == [[1, 1, 1], [1, 2, 2], [1, 1, 3]]
    with raises_at(f"{tmp_path / 'inter.csv'}:4: duplicate of line 2"):
        hllm(tmp_path, inter, ITEMS_CSV, options=LoadOptions(on_duplicate="error"))


def test_items_without_text_keep_or_error(tmp_path):
    items = "item_id,title,tag,description\na,A,,\nb, , ,\nc,,,\n"
    ds = hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\n", items)
    assert ds.repairs == {"items_without_text": 2}
    assert ds.items["title"].tolist() == ["A", "", ""]
    with raises_at(f"{tmp_path / 'items.csv'}:3: item has no text"):
        hllm(
            tmp_path,
            "item_id,user_id,timestamp\na,u1,1\n",
            items,
            options=LoadOptions(on_missing_text="error"),
        )


def test_duplicate_item_id_is_an_error(tmp_path):
    with raises_at(f"{tmp_path / 'items.csv'}:5: item id 'a' already defined on line 2"):
        hllm(tmp_path, "item_id,user_id,timestamp\na,u1,1\n", ITEMS_CSV + "a,Again,q,r\n")


def test_invalid_encoding_names_its_line(tmp_path):
    (tmp_path / "items.csv").write_bytes(
        b"item_id,title,tag,description\na,A,x,y\nb,\xff\xfe,x,y\n"
    )
    write(tmp_path / "inter.csv", "item_id,user_id,timestamp\na,u1,1\n")
    with raises_at(f"{tmp_path / 'items.csv'}:3: not valid utf-8"):
        load_hllm_csv(tmp_path / "inter.csv", tmp_path / "items.csv", name="toy")


def test_unterminated_quote(tmp_path):
    with pytest.raises(DataError, match="not valid CSV"):
        hllm(
            tmp_path,
            "item_id,user_id,timestamp\na,u1,1\n",
            'item_id,title,tag,description\na,"A,x,y\n',
        )


def test_no_interactions_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no interactions"):
        hllm(tmp_path, "item_id,user_id,timestamp\n", ITEMS_CSV)
    with pytest.raises(DataError, match="file not found"):
        load_hllm_csv(tmp_path / "nope.csv", tmp_path / "items.csv", name="toy")


def test_bad_option_value():
    with pytest.raises(ValueError, match="on_unknown_item"):
        LoadOptions(on_unknown_item="ignore")


# --- RecBole atomic files ----------------------------------------------------------------------


def test_recbole_text_fields_are_token_columns(tmp_path):
    write(
        tmp_path / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t2\t4\t5\n8\t1\t3\t6\n",
    )
    write(
        tmp_path / "toy.item",
        "item_id:token\ttitle:token_seq\tprice:float\tbrand:token\n"
        "1\tRed shoe\t9.5\tAcme\n2\tBlue hat\t3\tZed\n",
    )
    for path in (tmp_path / "toy", tmp_path / "toy.inter"):
        ds = load_recbole(path)
        assert ds.name == "toy"
        assert ds.text_fields == ["title", "brand"]
        assert ds.interactions.values.tolist() == [[1, 2, 5], [2, 1, 6]]
    # RecBole's own convention: dataset/NAME/NAME.inter, given as the folder.
    folder = tmp_path / "dataset" / "toy"
    folder.mkdir(parents=True)
    for suffix in (".inter", ".item"):
        (folder / f"toy{suffix}").write_text((tmp_path / f"toy{suffix}").read_text())
    assert load_recbole(folder).n_items == 2


def test_recbole_bad_header(tmp_path):
    write(tmp_path / "toy.inter", "user_id:token\titem_id\ttimestamp:float\n1\t1\t1\n")
    with raises_at(f"{tmp_path / 'toy.inter'}:1: header cell 'item_id'"):
        load_recbole(tmp_path / "toy")


# --- the shared reader -------------------------------------------------------------------------


def test_reader_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = write(tmp_path / "f.tsv", "a\tb\n1\t2\n\n   \n3\t4\r\n")
    table = read_delimited(path, sep="\t")
    assert table.frame.values.tolist() == [["1", "2"], ["3", "4"]]
    assert table.lines.tolist() == [2, 5]
    assert table.at(1) == f"{path}:5"


def test_reader_rejects_bad_headers(tmp_path):
    with pytest.raises(DataError, match="names column 'a' twice"):
        read_delimited(write(tmp_path / "f.csv", "a,a\n1,2\n"), sep=",", quoted=True)
    with pytest.raises(DataError, match="empty"):
        read_delimited(write(tmp_path / "g.csv", ""), sep=",", quoted=True)
