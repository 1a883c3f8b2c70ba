"""Benchmark: the text baselines MoRec and HLLM on MovieLens-100K beside the ID baselines.

Each text model runs with both item representations (text only, the papers'; text + a learnable
ID embedding), 3 seeds each, every run in its own process through ``hymirec train`` from
``configs/<model>_ml100k.yaml`` (settings from the validation search), on the same split,
evaluator and trainer as the ID models. The ID rows are read from
``benchmarks/results/baselines_ml100k.json`` (measured with the same protocol and machine). Which
item representation a model keeps is chosen on the mean validation NDCG@10, never on test.
Results: ``benchmarks/results/llm_baselines_ml100k.{json,md}``.

    .venv/bin/python benchmarks/llm_baselines_ml100k.py --slots 2 --threads 1 [--variants "morec text" ...]
"""

from __future__ import annotations

import argparse
import json
import os

from common import RESULTS, ROOT, command, machine
from variants import add_variant_arguments, baseline_markdown, baseline_summary, run_variants

VARIANTS = {
    "morec text": ("morec", []),
    "morec text+ID": ("morec", ["model.items.item_ids=true"]),
    "hllm text": ("hllm", []),
    "hllm text+ID": ("hllm", ["model.items.item_ids=true"]),
}
ID_MODELS = ["mostpop", "sasrec", "gru4rec", "hstu"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks")
    args = parser.parse_args()

    results_json = RESULTS / "llm_baselines_ml100k.json"
    previous = json.loads(results_json.read_text()) if results_json.exists() else {}
    summary, runs, meta = previous.get("summary", {}), previous.get("runs", {}), previous.get("meta", {})
    runs.update(run_variants(VARIANTS, args))
    for variant in args.variants:
        summary[variant] = baseline_summary(runs[variant])
        meta[variant] = {"command": command(), "seeds": args.seeds, "slots": args.slots, "threads": args.threads,
                         "load_average_after": os.getloadavg()}
    meta["machine"] = machine()
    results_json.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2))

    ids = json.loads((RESULTS / "baselines_ml100k.json").read_text())["summary"]
    table = {m: ids[m] for m in ID_MODELS if m in ids}
    table.update({v: summary[v] for v in VARIANTS if v in summary})
    chosen = []
    for model in ("morec", "hllm"):
        measured = [v for v in VARIANTS if v.startswith(model) and v in summary]
        if measured:
            best = max(measured, key=lambda v: summary[v]["valid_selected"][0])
            chosen.append(f"- {model}: **{best.split(' ', 1)[1]}** (valid N@10 "
                          + ", ".join(f"{v.split(' ', 1)[1]} {summary[v]['valid_selected'][0]:.4f}" for v in measured) + ")")
    commands = "\n".join(f"- {v}: `{meta[v]['command']}`" for v in VARIANTS if v in meta)
    md = (f"## Text baselines (MoRec, HLLM) beside the ID baselines on MovieLens-100K\n\n"
          f"Machine: {meta['machine']}. Leave-one-out, full ranking, same split, evaluator and trainer for "
          f"every row. ID rows: `benchmarks/results/baselines_ml100k.md`. Text rows came from:\n\n{commands}\n\n"
          f"Item representation chosen on validation (mean over seeds):\n\n" + "\n".join(chosen) + "\n\n"
          + baseline_markdown(table, args.seeds))
    (RESULTS / "llm_baselines_ml100k.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
