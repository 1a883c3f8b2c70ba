"""Benchmark: per-user inference cost as the history grows (DESIGN §3), HyMiRec against HLLM.

For each history length L (synthetic histories of L item ids drawn, seeded, from the
MovieLens-100K catalogue), one user (batch 1) is encoded by ``model.user_embeddings`` under
``torch.no_grad`` in eval mode, untrained weights (this is about cost, not quality):

- **HyMiRec** reads all L items: the L - n older ones as codebook codes through the lightweight
  recommender, the last n as item vectors through the LLM recommender (``data.max_len`` is set to
  the longest L so that nothing is cut);
- **HLLM (full)**: the user LM reads all L item vectors;
- **HLLM (last n)**: the same model fed only the last n items (n = HyMiRec's ``llm.recent``).

The catalogue's item vectors are cached (frozen MiniLM vectors, as serving holds them), so only
the user side is timed: the median of ``--repeats`` calls after one warm-up. Bytes fetched per
user: HyMiRec (L - n) x its history bytes per item (codes + scales) + n float32 item vectors;
HLLM L (or n) float32 item vectors. Peak memory is the growth above the loaded model during the
point's calls: on CUDA ``torch.cuda.max_memory_allocated`` (reset per point), on CPU the process's
peak resident set (``VmHWM``, reset per point through ``/proc/self/clear_refs``, Linux) minus its
resident set before the point, after ``malloc_trim`` has returned the freed heap. A point whose
warm-up call alone exceeds ``--max-seconds`` is recorded as skipped with that time, as is one
whose call would take longer by a linear extrapolation from the last timed length (a lower
bound: attention grows faster), and so are the longer histories of that model.

``--scale cpu``: configs/hymirec_ml100k.yaml and configs/hllm_ml100k.yaml. ``--scale paper``: the
paper's shapes with random weights: a TinyLlama-1.1B-shaped Llama as HyMiRec's LLM recommender
(n = 32, plain queries, text-only items) and as HLLM's user model, HyMiRec's lightweight
recommender 256 wide and a 3 x 256 codebook (src/hymirec/pipeline/presets/paper.yaml); items are
the MiniLM vectors. On ``--device cuda`` the models run under bf16 autocast.

    .venv/bin/python benchmarks/cost_vs_history.py --scale cpu --device cpu --threads 1
    python benchmarks/cost_vs_history.py --scale paper --device cuda --results /tmp/out

Writes ``<results>/cost_vs_history_<scale>_<device>.{json,md,png}`` (``_cpu`` alone for the CPU
scale on the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
from common import RESULTS, ROOT, command, machine, new_figure, peak_meter, save_figure, write_results

from hymirec.training.config import ExperimentConfig, load_experiment
from hymirec.training.run import build, load_split

TINYLLAMA = "{source: random-llama, hidden_size: 2048, num_layers: 22, num_heads: 32, intermediate_size: 5632}"
PAPER = {
    "hymirec": [
        f"model.llm.backbone={TINYLLAMA}", "model.llm.recent=32", "model.llm.query_offset=false",
        "model.items.item_ids=false", "model.history.k=256",
        "model.lightweight={enabled: true, coarse_queries: 2, dim: 256, num_layers: 2, num_heads: 4, "
        "ffn_dim: 1024, dropout: 0.1}",
    ],
    "hllm": [f"model.user_model={TINYLLAMA}"],
}
MODELS = ("HyMiRec", "HLLM (full)", "HLLM (last n)")


def experiment(name: str, scale: str, max_len: int) -> ExperimentConfig:
    """The model's experiment at ``scale``, with ``data.max_len = max_len``."""
    overrides = [f"data.max_len={max_len}"] + (PAPER[name] if scale == "paper" else [])
    return load_experiment(ROOT / "configs" / f"{name}_ml100k.yaml", overrides)


def build_model(config: ExperimentConfig, device: torch.device) -> torch.nn.Module:
    """The configured model, untrained, in eval mode on ``device``."""
    torch.manual_seed(0)
    return build(config, load_split(config)).eval().to(device)


def time_point(model, history: torch.Tensor, repeats: int, device: torch.device, max_seconds: float) -> dict:
    """One user's ``user_embeddings`` on ``history`` ``[L]``: median ms of ``repeats`` calls after a
    warm-up, peak memory above the model; skipped (with the warm-up's time) past ``max_seconds``."""
    items = history[None].to(device)
    times = torch.arange(1, len(history) + 1, device=device)[None]
    lengths = torch.tensor([len(history)], device=device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext())
    start, stop = peak_meter(device)
    base = start()
    calls = []
    with torch.no_grad(), autocast:
        for i in range(repeats + 1):
            begin = time.perf_counter()
            model.user_embeddings(items, times, lengths)
            if device.type == "cuda":
                torch.cuda.synchronize()
            calls.append(time.perf_counter() - begin)
            if i == 0 and calls[0] > max_seconds:
                return {"skipped": f"one call took {calls[0]:.1f} s > --max-seconds {max_seconds:g}"}
    return {"ms": 1000 * statistics.median(calls[1:]), "peak_mb": stop(base)}


def sweep(model, name: str, histories: dict[int, torch.Tensor], cut: int | None, args, device: torch.device,
          fetched) -> list[dict]:
    """One row per history length: ``model`` fed each history (its last ``cut`` items if given).
    A point whose time, grown at least linearly in L from the last one timed, would pass
    ``--max-seconds``, or whose warm-up did, is skipped with the reason, and so is every longer one."""
    rows, skipped, last = [], None, None
    for length, history in sorted(histories.items()):
        if not skipped and last and last[1] / 1000 * length / last[0] > args.max_seconds:
            skipped = (f"predicted >= {last[1] / 1000 * length / last[0]:.2f} s per call (linear in L from "
                       f"L={last[0]:,}) > --max-seconds {args.max_seconds:g}")
        point = {"skipped": skipped} if skipped else time_point(model, history[-cut:] if cut else history,
                                                                args.repeats, device, args.max_seconds)
        skipped = skipped or point.get("skipped")
        if "ms" in point:
            last = (length, point["ms"])
        rows.append({"model": name, "L": length, "bytes": fetched(length), **point})
        print(rows[-1], flush=True)
    return rows


def vector_bytes(model) -> int:
    """Bytes of one cached float32 item vector (the catalogue's stored vectors, before projection)."""
    return 4 * model.items.text.shape[1]


def plot(rows: list[dict], title: str, path: Path) -> None:
    fig, axes = new_figure(1, 2, figsize=(11, 4.2))
    for name in MODELS:
        points = [r for r in rows if r["model"] == name]
        timed = [r for r in points if "ms" in r]
        axes[0].plot([r["L"] for r in timed], [r["ms"] for r in timed], "o-", label=name)
        axes[1].plot([r["L"] for r in points], [r["bytes"] for r in points], "o-", label=name)
    for ax, label in zip(axes, ("time per user (ms)", "bytes fetched per user")):
        ax.set(xscale="log", yscale="log", xlabel="history length L (items)", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    save_figure(fig, path, title)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", nargs="+", type=int, default=[100, 300, 1000, 3000, 10_000])
    parser.add_argument("--scale", choices=["cpu", "paper"], default="cpu")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="skip a point whose warm-up call takes longer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the .json, .md and .png")
    args = parser.parse_args()
    if min(args.lengths) < 1 or args.repeats < 1 or args.threads < 1 or args.max_seconds <= 0:
        parser.error("--lengths, --repeats and --threads must be >= 1, --max-seconds > 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU here")
    lengths = sorted(set(args.lengths))
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    config = experiment("hymirec", args.scale, max(lengths))
    n = config.model_config.llm.recent
    if lengths[0] <= n:
        parser.error(f"--lengths must all be > n = {n} (HyMiRec's llm.recent, HLLM's truncation), got {lengths[0]}")
    hymirec = build_model(config, device)
    catalogue = hymirec.n_items
    generator = torch.Generator().manual_seed(args.seed)
    histories = {length: torch.randint(1, catalogue + 1, (length,), generator=generator) for length in lengths}
    history_bytes = hymirec.history_bytes_per_item
    recent_bytes = vector_bytes(hymirec)
    rows = sweep(hymirec, "HyMiRec", histories, None, args, device,
                 lambda length: (length - n) * history_bytes + n * recent_bytes)
    del hymirec

    hllm = build_model(experiment("hllm", args.scale, max(lengths)), device)
    item_bytes = vector_bytes(hllm)
    rows += sweep(hllm, "HLLM (full)", histories, None, args, device, lambda length: length * item_bytes)
    rows += sweep(hllm, "HLLM (last n)", histories, n, args, device, lambda length: n * item_bytes)

    ratios = {}
    for name in MODELS:
        ms = {r["L"]: r.get("ms") for r in rows if r["model"] == name}
        first, last = ms[lengths[0]], ms[lengths[-1]]
        ratios[name] = last / first if first and last else None
    meets = ratios["HyMiRec"] is not None and ratios["HyMiRec"] <= 1.5
    gpu = f", {torch.cuda.get_device_name()}" if device.type == "cuda" else f", {args.threads} torch thread(s)"
    suffix = "_cpu" if (args.scale, args.device) == ("cpu", "cpu") else f"_{args.scale}_{args.device}"
    stem = f"cost_vs_history{suffix}"
    memory = ("peak torch.cuda.max_memory_allocated above the loaded model" if device.type == "cuda"
              else "peak resident set (VmHWM) above the resident set before the point, after malloc_trim")
    data = {
        "machine": machine() + gpu, "command": command(), "torch": torch.__version__, "scale": args.scale,
        "device": args.device, "precision": "bf16 autocast" if device.type == "cuda" else "float32",
        "recent_n": n, "history_bytes_per_item": history_bytes, "hymirec_vector_bytes": recent_bytes,
        "hllm_vector_bytes": item_bytes, "repeats": args.repeats, "memory": memory,
        "ratio_first_to_last": {"lengths": [lengths[0], lengths[-1]], **ratios},
        "hymirec_meets_1.5x": meets, "rows": rows,
    }
    span = f"time(L={lengths[-1]:,}) / time(L={lengths[0]:,})"
    lines = [
        f"## Inference cost per user vs history length ({args.scale} scale, {args.device})", "",
        f"`{data['command']}` on {data['machine']} (torch {torch.__version__}, {data['precision']}); batch 1, "
        f"untrained weights, median of {args.repeats} calls after a warm-up. n = {n} recent items; bytes fetched: "
        f"HyMiRec (L - n) x {history_bytes} B (codes + scales) + n x {recent_bytes} B (float32 vectors), HLLM "
        f"{item_bytes} B per item read. Memory: {memory}.", "",
        "| model | L | ms per user | bytes per user | peak MiB |", "|---|---|---|---|---|",
    ]
    for r in rows:
        timed = f"{r['ms']:.1f}" if "ms" in r else f"skipped: {r['skipped']}"
        peak = f"{r['peak_mb']:.1f}" if "ms" in r else "-"
        lines.append(f"| {r['model']} | {r['L']:,} | {timed} | {r['bytes']:,} | {peak} |")
    lines += ["", f"| model | {span} |", "|---|---|"]
    shown = {name: "-" if v is None else f"{v:.2f}x" for name, v in ratios.items()}
    lines += [f"| {name} | {v} |" for name, v in shown.items()]
    verdict = "meets" if meets else "does **not** meet"
    lines += ["", f"Target: HyMiRec's {span} <= 1.5x; here it {verdict} it ({shown['HyMiRec']}); HLLM fed the "
              f"full history: {shown['HLLM (full)']}.", "", f"![cost vs history]({stem}.png)", ""]
    write_results(stem, data, "\n".join(lines), args.results)
    plot(rows, f"HyMiRec vs HLLM, {args.scale} scale on {args.device}", args.results / f"{stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
