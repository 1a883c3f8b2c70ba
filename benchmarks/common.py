"""What every benchmark script writes the same way: the machine, the command, the result files
and figures."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ML100K = "movielens-100k"  # the dataset the benchmarks were searched and run on first
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    """One line naming the machine a benchmark ran on (and its GPU, where there is one)."""
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}{gpu}"


def command() -> str:
    """The command line that ran this benchmark, as a reader would retype it."""
    return f"python benchmarks/{Path(sys.argv[0]).name} {shlex.join(sys.argv[1:])}".strip()


def preset_item_vectors() -> Path:
    """The MovieLens-100K item vectors HyMiRec's preset reads (``configs/hymirec_ml100k.yaml``'s
    ``model.items`` through the library's pretrained export: its template, pooling and token
    budget), made once and cached. The benchmarks that measure in "the item space" read these."""
    from hymirec.data.fetch import load_dataset
    from hymirec.encoders.config import ItemTextConfig
    from hymirec.encoders.export import export_pretrained_embeddings
    from hymirec.training.config import load_experiment

    items = vars(load_experiment(ROOT / "configs" / "hymirec_ml100k.yaml").model_config.items)
    settings = ItemTextConfig.of_model_items(items, "model.items")
    path, _ = export_pretrained_embeddings(load_dataset(ML100K), settings, progress=False)
    return Path(path)


def peak_meter(device):
    """``(start, stop)`` for a ``torch.device``: ``stop(start())`` is the peak memory in MiB above
    what was in use at ``start()`` (CUDA: allocated memory; CPU: the resident set, Linux)."""
    import torch

    if device.type == "cuda":
        def start() -> float:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated()

        def stop(base: float) -> float:
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        return start, stop

    def status(key: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return float(line.split()[1]) * 1024  # kB
        raise RuntimeError(f"no {key} in /proc/self/status")

    def start() -> float:
        # Freed heap is handed back first, or a point would reuse the last one's pages unseen.
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return status("VmRSS:")

    def stop(base: float) -> float:
        return (status("VmHWM:") - base) / 2**20
    return start, stop


def positive(text: str) -> int:
    """An ``argparse`` type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **subplots):
    """``(figure, axes)`` as ``plt.subplots(nrows, ncols, figsize=..., **subplots)`` gives them, on a
    ``matplotlib.figure.Figure`` of its own: no pyplot, so no global backend or figure state is
    touched (``savefig`` renders a PNG with the Agg canvas) and nothing needs closing."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_figure(fig, path: Path, title: str | None = None, dpi: int = 120) -> None:
    """Give ``fig`` its title (if any), lay it out and write it as a PNG at ``path``."""
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)


def write_results(stem: str, data: dict, markdown: str, folder: Path = RESULTS) -> None:
    """Write ``<folder>/<stem>.json`` and ``<folder>/<stem>.md`` (``results/`` by default) and
    print the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2))
    (folder / f"{stem}.md").write_text(markdown)
    print(markdown)
