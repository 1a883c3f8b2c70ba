"""HLLM at the paper's scale on a GPU: TinyLlama-1.1B-shaped item and user LLMs (random weights
of that shape; no checkpoint can be fetched here), trained on MovieLens-100K with bf16 autocast
and gradient checkpointing through the shared trainer, for ``--epochs`` epochs.

It checks that the CUDA path of the trainer (device, autocast, CUDA generators and RNG state,
checkpoints) carries a 2 x 1.1B-parameter model, and measures step throughput and peak GPU
memory. The numbers are about cost, not quality: random weights learn little in one epoch.

    python benchmarks/llm_gpu.py --epochs 1            # on a machine with a CUDA GPU
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import RESULTS, ROOT, command, machine

from hymirec.training.config import load_experiment
from hymirec.training.run import run_experiment

TINYLLAMA = "{source: random-llama, hidden_size: 2048, num_layers: 22, num_heads: 32, intermediate_size: 5632, gradient_checkpointing: true}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", default="/tmp/hymirec-gpu-runs", help="run folder parent (checkpoints are GBs)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where llm_gpu.{json,md} go")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    config = load_experiment(ROOT / "configs" / "hllm_tinyllama_ml100k.yaml", [
        f"model.items.encoder={TINYLLAMA}", f"model.user_model={TINYLLAMA}", f"train.epochs={args.epochs}",
        "train.progress=false", f"out_dir={args.runs}",
    ])
    start = time.perf_counter()
    results = run_experiment(config, overwrite=True)
    wall = time.perf_counter() - start
    record = {
        "machine": f"{machine()}, {torch.cuda.get_device_name()}",
        "command": command(),
        "torch": torch.__version__,
        "epochs": results["epochs"],
        "train_seconds": results["train_seconds"],
        "seconds_per_epoch": results["train_seconds"] / max(results["epochs"], 1),
        "positions_per_s": results["positions_per_s"],
        "peak_gpu_mb": results["peak_gpu_mb"],
        "wall_seconds": wall,
        "test_masked": results["test_masked"],
        "checkpoint_mb": (config.run_dir / "best.safetensors").stat().st_size / 2**20,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "llm_gpu.json").write_text(json.dumps(record, indent=2))
    md = (
        f"## HLLM with TinyLlama-1.1B-shaped item and user LLMs on a GPU\n\n`{record['command']}` on "
        f"{record['machine']} (torch {record['torch']}); bf16 autocast, gradient checkpointing, batch 32 x 32 "
        f"positions, full softmax over 1,682 items.\n\n"
        f"| epochs | s/epoch | positions/s | peak GPU MiB | best checkpoint MiB | wall s | test N@10 (masked) |\n"
        f"|---|---|---|---|---|---|---|\n"
        f"| {record['epochs']} | {record['seconds_per_epoch']:.1f} | {record['positions_per_s']:.0f} | "
        f"{record['peak_gpu_mb']:.0f} | {record['checkpoint_mb']:.0f} | {wall:.0f} | "
        f"{record['test_masked']['ndcg@10']:.4f} |\n"
    )
    (args.results / "llm_gpu.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
