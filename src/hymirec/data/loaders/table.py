"""The one reader of delimited text files (CSV, TSV, ``|``- and ``::``-separated) behind every loader.

It keeps every value as a string and remembers the 1-based line of the source file on which each
row starts, so that any later check (an unparsable timestamp, an unknown item id, a duplicate
row) can name the exact ``file:line``. Blank lines are skipped: they carry no row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hymirec.data.dataset import DataError

# Files below this size read too fast for a progress bar to be more than flicker.
_PROGRESS_MIN_BYTES = 32 * 1024 * 1024
_PROGRESS_EVERY_LINES = 1 << 16


@dataclass(frozen=True)
class DelimitedFile:
    """The rows of one file: ``frame`` has one string column per field, ``lines[i]`` is the
    source line on which row ``i`` starts."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray

    def at(self, row: int) -> str:
        """``path:line`` of row ``row``, the prefix of every error about that row."""
        return f"{self.path}:{int(self.lines[row])}"

    def require(self, columns: Sequence[str]) -> None:
        """Raise ``DataError`` naming the header line unless every column in ``columns`` exists."""
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            raise DataError(
                f"{self.path}:1: missing column(s) {missing}; the header has {list(self.frame.columns)}"
            )


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
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if quoted and len(sep) != 1:
        raise ValueError("quoted files need a one-character separator")
    rows: list[list[str]] = []
    lines: list[int] = []
    header = list(names) if names is not None else None
    size = path.stat().st_size
    with (
        path.open("rb") as handle,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"reading {path.name}",
            disable=True if size < _PROGRESS_MIN_BYTES else None,
            leave=False,
        ) as bar,
    ):
        for count, (line, fields) in enumerate(_records(handle, path, sep, encoding, quoted), 1):
            if count % _PROGRESS_EVERY_LINES == 0:
                bar.update(handle.tell() - bar.n)
            if header is None:
                header = [f.strip() for f in fields]
                _check_header(path, line, header)
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path}:{line}: expected {len(header)} fields ({', '.join(header)}) "
                    f"separated by {sep!r}, found {len(fields)}"
                )
            rows.append(fields)
            lines.append(line)
    if header is None:
        raise DataError(f"{path}: the file is empty (no header line)")
    columns = list(zip(*rows)) if rows else [()] * len(header)
    frame = pd.DataFrame(
        {name: pd.Series(col, dtype="str") for name, col in zip(header, columns)}
    )
    return DelimitedFile(path, frame, np.asarray(lines, dtype=np.int64))


def _check_header(path: Path, line: int, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if not name:
            raise DataError(f"{path}:{line}: the header has an empty column name")
        if name in seen:
            raise DataError(f"{path}:{line}: the header names column {name!r} twice")
        seen.add(name)


def _records(handle, path: Path, sep: str, encoding: str, quoted: bool) -> Iterator[tuple[int, list[str]]]:
    """``(start line, fields)`` of each non-blank record."""
    text = _decoded_lines(handle, path, encoding)
    if not quoted:
        for number, line in enumerate(text, 1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line.split(sep)
        return
    reader = csv.reader(text, delimiter=sep, strict=True)
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
        if fields and any(f.strip() for f in fields):
            yield start, fields


def _decoded_lines(handle, path: Path, encoding: str) -> Iterator[str]:
    # Decoding line by line (rather than opening the file in text mode) lets a decoding error
    # name its line.
    for number, raw in enumerate(handle, 1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}:{number}: not valid {encoding} text ({exc.reason} at column {exc.start + 1})"
            ) from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        yield line
