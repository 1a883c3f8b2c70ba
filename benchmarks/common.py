"""What every benchmark script writes the same way: the machine, the command, the result files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line naming the machine a benchmark ran on (and its GPU, where there is one)."""
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}{gpu}"


def command() -> str:
    """The command line that ran this benchmark, as a reader would retype it."""
    return f"python benchmarks/{Path(sys.argv[0]).name} {shlex.join(sys.argv[1:])}".strip()


def positive(text: str) -> int:
    """An ``argparse`` type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def save_figure(fig, path: Path, title: str) -> None:
    """Give ``fig`` its title, lay it out, write it as a PNG at ``path`` and close it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(stem: str, data: dict, markdown: str, folder: Path = RESULTS) -> None:
    """Write ``<folder>/<stem>.json`` and ``<folder>/<stem>.md`` (``results/`` by default) and
    print the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2))
    (folder / f"{stem}.md").write_text(markdown)
    print(markdown)
