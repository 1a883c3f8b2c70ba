"""The one reader of delimited text files (CSV, TSV, ``|``, ``::``) behind every loader.

It keeps every value as a string and remembers the 1-based line of the source file on which each
row starts, so that any later check (an unparsable timestamp, an unknown item id, a duplicate
row) can name the exact ``file:line``. Blank lines are skipped: they carry no row.

Text without quoting is split with Arrow kernels (a million lines in well under a second); only
CSV text that actually contains quote characters goes through Python's ``csv`` module, which
handles quoted separators and line breaks and reports where each record starts. A file whose name
ends in ``.gz`` is gunzipped first.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hymirec.data.dataset import DataError

_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype, Arrow-backed


@dataclass(frozen=True)
class DelimitedFile:
    """The rows of one file: ``frame`` has one string column per field, ``lines[i]`` is the
    source line on which row ``i`` starts, ``header_line`` the header's line (0: no header)."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray
    header_line: int

    def at(self, row: int) -> str:
        """``path:line`` of row ``row``, the prefix of every error about that row."""
        return f"{self.path}:{int(self.lines[row])}"

    def require(self, columns: Sequence[str]) -> None:
        """Raise ``DataError`` naming the header line unless every column in ``columns`` exists."""
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            raise DataError(
                f"{self.path}:{self.header_line}: missing column(s) {missing}; "
                f"the header has {list(self.frame.columns)}"
            )

    def require_integers(self, columns: Sequence[str]) -> None:
        """Raise ``DataError`` naming the first row whose value in one of ``columns`` is not an
        integer (surrounding blanks allowed)."""
        for column in columns:
            values = self.frame[column]
            ok = values.str.strip().str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool, na_value=False)
            if not ok.all():
                row = int(np.flatnonzero(~ok)[0])
                raise DataError(f"{self.at(row)}: {column} {values.iat[row]!r} is not an integer")


def read_delimited(
    path: str | Path,
    *,
    sep: str,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = False,
) -> DelimitedFile:
    """Read ``path`` into string columns, remembering the source line of each row.

    ``names`` gives the column names of a file without a header; when it is ``None`` the first
    non-blank row is the header. ``quoted=True`` parses CSV quoting (fields may then contain the
    separator and line breaks; ``sep`` must be one character); otherwise each line is split on
    ``sep``, which may be longer than one character (MovieLens-1M's ``::``). A row with the wrong
    number of fields, text that is not valid ``encoding``, or a missing file raises ``DataError``.
    A ``.gz`` file is gunzipped first (line numbers are those of the uncompressed text).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if quoted and len(sep) != 1:
        raise ValueError("quoted files need a one-character separator")
    text = _decode(path, _read_bytes(path), encoding).removeprefix("\ufeff")
    if quoted and '"' in text:
        lines, rows = _csv_rows(path, text, sep)
    else:
        # Without quote characters, CSV is exactly "split each line on the separator".
        lines, rows = _split_rows(text, sep)
    header_line = 0
    if names is None:
        if not len(lines):
            raise DataError(f"{path}: the file is empty (no header line)")
        names = [name.strip() for name in rows[0].as_py()]
        header_line = int(lines[0])
        _check_header(path, header_line, names)
        lines, rows = lines[1:], rows[1:]
    counts = pc.list_value_length(rows).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(counts != len(names))
    if len(wrong):
        raise DataError(
            f"{path}:{int(lines[wrong[0]])}: expected {len(names)} fields ({', '.join(names)}) "
            f"separated by {sep!r}, found {int(counts[wrong[0]])}"
        )
    # Every row now has len(names) fields, so field j of row i sits at i * len(names) + j.
    values = rows.flatten()
    columns = {
        name: pd.Series(values.take(np.arange(j, len(values), len(names))), dtype=_STR)
        for j, name in enumerate(names)
    }
    return DelimitedFile(path, pd.DataFrame(columns), lines.astype(np.int64), header_line)


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc})") from None


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise DataError(
            f"{path}:{line}: not valid {encoding} text ({exc.reason} at byte {column} of the line)"
        ) from None


def _split_rows(text: str, sep: str) -> tuple[np.ndarray, pa.ListArray]:
    """Line numbers and fields of the non-blank lines of unquoted text."""
    lines = pc.split_pattern(pa.array([text], type=pa.large_string()), "\n").flatten()
    lines = pc.utf8_rtrim(lines, characters="\r")
    blank = pc.equal(pc.utf8_trim_whitespace(lines), "").to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(~blank)
    return kept + 1, pc.split_pattern(lines.take(kept), sep)


def _csv_rows(path: Path, text: str, sep: str) -> tuple[np.ndarray, pa.ListArray]:
    """Start lines and fields of the records of quoted CSV text."""
    starts: list[int] = []
    rows: list[list[str]] = []
    for start, fields in _csv_records(path, text, sep):
        starts.append(start)
        rows.append(fields)
    return np.asarray(starts, dtype=np.int64), pa.array(rows, type=pa.list_(pa.large_string()))


def _csv_records(path: Path, text: str, sep: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader((line + "\n" for line in text.split("\n")), delimiter=sep, strict=True)
    consumed = 0
    while True:
        start = consumed + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: not valid CSV: {exc}") from None
        consumed = reader.line_num
        # Only an empty or all-blank line is skipped; ",," is a row of empty fields.
        if len(fields) > 1 or (fields and fields[0].strip()):
            yield start, fields


def _check_header(path: Path, line: int, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if not name:
            raise DataError(f"{path}:{line}: the header has an empty column name")
        if name in seen:
            raise DataError(f"{path}:{line}: the header names column {name!r} twice")
        seen.add(name)
