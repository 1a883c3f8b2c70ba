"""Benchmark: the paper's Table 2 on MovieLens-100K (or another dataset) -- every baseline, PatchRec
and HyMiRec on one split, 3 seeds, R@10/50/100/200 and N@10/50/100/200 under both masking
conventions, with wall time and peak memory per model.

Rows of models measured by earlier benchmarks with the same protocol, split and machine are read
from their per-run results (``baselines_ml100k.json``: GRU4Rec, SASRec, HSTU;
``llm_baselines_ml100k.json``: MoRec, HLLM, in the item representation their validation chose).
PatchRec and HyMiRec (both item representations, text and text + ID) are trained now, each run in
its own process through ``hymirec train`` from ``configs/<model>_ml100k.yaml``. The variant a
model is listed with is the one with the best mean validation NDCG@10, never chosen on test; both
HyMiRec variants are reported. Results: ``benchmarks/results/table2_ml100k.{json,md}`` (the JSON is
what ``hymirec run``'s report reads for its baseline rows).

Stage 2 reads the pretrained MiniLM vectors here (no stage 1), as the text baselines do, so that
every text model starts from the same item vectors.

``--dataset movielens-small`` (MovieLens-latest-small) trains every row now with the settings
MovieLens-100K's validation chose (its configs, its text baselines' item representation, HyMiRec as
searched with its weight average, beside HyMiRec without its long-history branch; HyMiRec's rows
and batch set for the positions and users per step, see ``plan``), and writes
``benchmarks/results/table2_<dataset>.{json,md}``. PatchRec and HyMiRec's earlier variants are left
out there: each lost to HyMiRec as searched on MovieLens-100K. Every model keeps the full softmax
over the catalogue (9,742 items, 6x MovieLens-100K's: one 128 x 9,742 score matrix a step is cheap
on a CPU, and sampling negatives would make the comparison one of losses).

    .venv/bin/python benchmarks/table2_ml100k.py --slots 2 --threads 1 [--variants "hymirec text+ID" ...]
    .venv/bin/python benchmarks/table2_ml100k.py --dataset movielens-small --slots 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from common import ML100K, RESULTS, ROOT, command, machine, write_results
from variants import (EVAL_KS, NEXT_ITEM, SPLITS, add_variant_arguments, metric_header, metric_names, plus_minus,
                      run_variants, table_header, table_summary)

METRICS = metric_names(EVAL_KS)
# What the validation search chose (search_ml100k.md, stages c1-regularise and c1-wd-around, seed 42):
# every training position a user state once per epoch (windows: tile), the last 32 items read by a
# 4-layer LLM recommender at their item tokens, the long history before them through the lightweight
# recommender and the indicator, one interest, the next-item loss on cosine scores at a fixed
# temperature of 0.1, weight decay 0.1; validation peaks near epoch 7, so 24 epochs with patience 4.
SEARCHED = ["model.items.item_ids=true", "data.max_len=512", "model.llm.recent=32", "model.lightweight.enabled=true",
            "model.llm.indicator=true", "model.llm.interests=1", "model.llm.readout=item",
            "model.llm.backbone.num_layers=4", "model.windows=tile", "train.weight_decay=0.1",
            "train.loss={name: full_softmax, temperature: 0.1, learnable_temperature: false}",
            "train.epochs=24", "train.patience=4"]
# The next search stage (s-variance): at a constant lr validation swung by ~0.01 from epoch to epoch
# and the best-epoch pick chased it; an average of the weights over the last ~200 steps (~7 epochs of
# 30 steps) is what validation, the best checkpoint and the test read. It peaks later: patience 5.
AVERAGED = [*SEARCHED, "train.ema_decay=0.995", "train.epochs=30", "train.patience=5"]
WITHOUT_LONG_HISTORY = ["model.lightweight.enabled=false", "model.llm.indicator=false"]
# The head from the LLM's states to the item space starting as the identity (a random one scrambles
# the residual stream HLLM scores directly; on MovieLens-latest-small, search stage ms-hllm-recipe,
# HyMiRec reduced to HLLM's layout and loss learned far slower than HLLM with it).
IDENTITY_HEAD = [*AVERAGED, "model.llm.head_init=identity"]
# Dropout in the LLM recommender (its input vectors 0.2, attention 0.1) was ahead at its search stage
# (c1-wd-around, 0.1244 against 0.1230 at the same settings) but the fixed temperature, the weight
# average and the identity head were searched without it; this puts it back on top of them.
DROPOUT = [*IDENTITY_HEAD, "model.llm.dropout=0.2", "model.llm.attention_dropout=0.1"]
# Tiled windows of 32 give a trained state 1-32 recent items (16.5 on average) where evaluation's
# reads 32; SASRec's validation gained most from the same fix (data.window_context 40 of 50:
# 0.130 against 0.125). Each window here also reads the 16 items before its trained part, so every
# trained state reads 17-32, at twice the LLM tokens per state.
CONTEXT = [*DROPOUT, "model.llm.context=16"]
# Trained here: (config, overrides) per variant.
VARIANTS = {
    "patchrec text": ("patchrec", ["model.items.item_ids=false"]),
    "patchrec text+ID": ("patchrec", ["model.items.item_ids=true"]),
    "hymirec text": ("hymirec", ["model.items.item_ids=false"]),
    "hymirec text+ID": ("hymirec", ["model.items.item_ids=true"]),
    # The paper's "w/o DMIL": one interest, the next item, beside the full model (the validation
    # search of this issue found it ahead on this data; both are reported).
    "hymirec text+ID single-interest": ("hymirec",
                                        ["model.items.item_ids=true", "model.llm.interests=1", NEXT_ITEM]),
    "hymirec text+ID tiled": ("hymirec", SEARCHED),
    # The paper's "w/o lightweight": the searched model reading the recent items only.
    "hymirec text+ID tiled w/o long history": ("hymirec", [*SEARCHED, *WITHOUT_LONG_HISTORY]),
    "hymirec text+ID tiled EMA": ("hymirec", AVERAGED),
    "hymirec text+ID tiled EMA w/o long history": ("hymirec", [*AVERAGED, *WITHOUT_LONG_HISTORY]),
    "hymirec text+ID tiled EMA identity head": ("hymirec", IDENTITY_HEAD),
    "hymirec text+ID tiled EMA identity head w/o long history": ("hymirec", [*IDENTITY_HEAD, *WITHOUT_LONG_HISTORY]),
    "hymirec text+ID tiled EMA identity head dropout": ("hymirec", DROPOUT),
    "hymirec text+ID tiled EMA identity head dropout context 16": ("hymirec", CONTEXT),
    "hymirec text+ID tiled EMA identity head dropout context 16 w/o long history":
        ("hymirec", [*CONTEXT, *WITHOUT_LONG_HISTORY]),
}
# Trained on every dataset but MovieLens-100K (whose rows of 512 already read up to 480 items of
# long history before the last 32): rows that train 128 positions, as the other datasets' rows of
# 128 below, but read the 384 items before them as the long history of their windows, and
# evaluation reads the last 512 items. Rows of 128 leave a window at most 96 items of long history
# where MovieLens-latest-small's histories run to thousands: the long-history branch's test there.
# Evaluated without its long history (benchmarks/long_history_probe.py), the long-context model
# scored as well as with it: the branch, fed decoded text vectors and trained through c coarse
# tokens alone, learned nothing the recent items lack. "ids+loss" gives it the model's item
# vectors (text + ID) and a next-item loss of its own at each trained position (weight 0.5).
LIGHTWEIGHT_IDS_LOSS = ["model.lightweight.item_ids=shared", "model.lightweight.next_item_weight=0.5"]
LONG_CONTEXT = {"hymirec text+ID tiled EMA identity head long context": ("hymirec", IDENTITY_HEAD),
                "hymirec text+ID tiled EMA identity head long context ids+loss":
                    ("hymirec", [*IDENTITY_HEAD, *LIGHTWEIGHT_IDS_LOSS])}
LONG_CONTEXT_ROWS = ["data.max_len=512", "data.window_context=384", "data.window_whole_prefix=false",
                     "train.batch_size=16"]
# Trained now on every dataset but MovieLens-100K, whose rows of these come from EARLIER.
BASELINES = {
    "gru4rec": ("gru4rec", []),
    "gru4rec EMA": ("gru4rec", ["train.ema_decay=0.995"]),
    "sasrec": ("sasrec", []),
    # Whether this dataset's long histories carry next-item information a model can read: the
    # same SASRec reading up to 200 items before a pair instead of 50 (each still sees >= 40). Its
    # 940 rows on MovieLens-latest-small (8,125 of 50) in batches of 4 keep the pairs per step
    # (~420) and the steps per epoch (~235 against 254) of batches of 32 rows of 50.
    "sasrec max_len 200": ("sasrec", ["data.max_len=200", "train.batch_size=4"]),
    "hstu": ("hstu", []),
    "hstu window context 40": ("hstu", ["data.window_context=40"]),
    "morec text+ID": ("morec", ["model.items.item_ids=true"]),
    "hllm text+ID": ("hllm", ["model.items.item_ids=true"]),
}
# Read from earlier benchmarks: table row -> (results file, its variants of that model).
EARLIER = {
    "GRU4Rec": ("baselines_ml100k.json", ["gru4rec", "gru4rec EMA", "gru4rec EMA window context 40"]),
    "SASRec": ("baselines_ml100k.json", ["sasrec"]),  # its config has the window context since 2026-12-03
    "HSTU": ("baselines_ml100k.json", ["hstu", "hstu window context 40"]),
    "MoRec": ("llm_baselines_ml100k.json", ["morec text", "morec text+ID"]),
    "HLLM": ("llm_baselines_ml100k.json", ["hllm text", "hllm text+ID"]),
}
# Table rows trained here: every variant of the model, in VARIANTS' order.
ROWS = {row: [n for n, (config, _) in VARIANTS.items() if config == row.lower()] for row in ("PatchRec", "HyMiRec")}
# The ID baselines' variants that MovieLens-100K's validation chose get their chance here too.
OTHER_DATASET_ROWS = {"GRU4Rec": ["gru4rec", "gru4rec EMA"], "SASRec": ["sasrec", "sasrec max_len 200"],
                      "HSTU": ["hstu", "hstu window context 40"], "MoRec": ["morec text+ID"],
                      "HLLM": ["hllm text+ID"],
                      "HyMiRec": ["hymirec text+ID tiled EMA", "hymirec text+ID tiled EMA w/o long history",
                                  "hymirec text+ID tiled EMA identity head",
                                  "hymirec text+ID tiled EMA identity head w/o long history",
                                  "hymirec text+ID tiled EMA identity head dropout",
                                  "hymirec text+ID tiled EMA identity head dropout context 16",
                                  "hymirec text+ID tiled EMA identity head dropout context 16 w/o long history",
                                  *LONG_CONTEXT]}


def plan(dataset: str) -> tuple[dict, dict, dict]:
    """(variants this script can train, rows read from earlier benchmarks, table rows -> variants)."""
    if dataset == ML100K:
        return VARIANTS, EARLIER, {**{r: n for r, (_, n) in EARLIER.items()}, **ROWS}
    names = [n for row in OTHER_DATASET_ROWS.values() for n in row]
    trainable = {n: {**BASELINES, **VARIANTS, **LONG_CONTEXT}[n] for n in names}
    # HyMiRec's batch counts rows, whose fill follows the dataset's history lengths. On
    # MovieLens-latest-small 32 rows of 512 held ~4,700 positions (21 steps an epoch; "A512"
    # stalled at valid N@10 0.028 where HLLM reached 0.06); 8 rows of 512 gave HLLM's ~1,200
    # positions a step but only 8 users, a long history's user filling half a batch, and learned
    # slowly (search_ml100k.md, stage ms-loss: 0.032 at epoch 5, 0.043 at 13). 16 rows of 128 hold
    # as many positions from twice the users and a long history of up to 96 items before the last
    # 32 (median history 70): 0.054 at epoch 5, peak 0.060 at 6 (stage ms-rows; rows of 256: 0.047
    # at epoch 5).
    rows = ["data.max_len=128", "train.batch_size=16"]
    # After a variant's own settings: they replace the searched rows of 512 (SEARCHED's max_len).
    return ({n: (config, [*own, *(LONG_CONTEXT_ROWS if n in LONG_CONTEXT else rows)] if config == "hymirec" else own)
             for n, (config, own) in trainable.items()}, {}, OTHER_DATASET_ROWS)


def stored_results(path: Path) -> tuple[dict, dict[str, list[dict]]]:
    """The results file ``path`` (empty when it does not exist) and its runs, each with its seed."""
    results = json.loads(path.read_text()) if path.exists() else {}
    return results, results.get("runs", {})


def chosen(variants: dict[str, dict]) -> str:
    """The variant with the best mean validation NDCG@10 among those with the most seeds: a mean
    over fewer seeds is not comparable (one seed moves it by ~0.005 on 610 users)."""
    most = max(v["seeds"] for v in variants.values())
    return max((n for n in variants if variants[n]["seeds"] == most), key=lambda v: variants[v]["valid_ndcg@10"]["mean"])


def markdown(models: dict[str, dict], notes: list[str], meta: dict) -> str:
    commands = sorted({c for s in models.values() for c in s.get("commands", [s["command"]] if "command" in s else [])})
    dataset = meta.get("dataset", ML100K)
    lines = [f"## Table 2 on {dataset} (leave-one-out, full ranking)\n",
             f"Machine: {meta['machine']}. Mean ± std over each row's seeds (3 unless the last table says "
             "otherwise; one seed: its value alone); each model in the variant its validation "
             "NDCG@10 chose (all variants in the JSON). The rows this script trained were trained or read back by:\n",
             *[f"- `{c}`" for c in commands], "", *notes, ""]
    for split, title in SPLITS.items():
        lines += [f"### Test, {title}", "", *metric_header(EVAL_KS, ["model", "variant"])]
        for name, s in models.items():
            lines.append(f"| {name} | {s['variant']} | "
                         + " | ".join(plus_minus(s[split][m], several=s["seeds"] > 1) for m in METRICS) + " |")
        lines.append("")
    lines += history_length_table(models)
    lines += ["### Validation and cost per run", "",
              "| model | variant | seeds | valid N@10 | epochs | training positions/s | wall time (s) | peak RSS (MiB) |",
              "|---|---|---|---|---|---|---|---|"]
    for name, s in models.items():
        c, valid = s["cost"], plus_minus(s["valid_ndcg@10"], several=s["seeds"] > 1)
        wall = plus_minus(c["wall_seconds"], 0) if c["wall_seconds"] else "not kept"
        lines.append(f"| {name} | {s['variant']} | {s['seeds']} | {valid} "
                     f"| {c['epochs']['mean']:.1f} | {c['positions_per_s']['mean']:.0f} "
                     f"| {wall} | {c['peak_rss_mb']['mean']:.0f} |")
    return "\n".join(lines) + "\n"


def history_length_table(models: dict[str, dict]) -> list[str]:
    """Test N@10 (history masked) by the user's history length, over each row's runs that report
    it (runs evaluated since ``eval.history_buckets``; their seeds listed); nothing when none does."""
    rows = {name: s["test_by_history_length"] | {"variant": s["variant"]}
            for name, s in models.items() if "test_by_history_length" in s}
    if not rows:
        return []
    groups = next(iter(rows.values()))["groups"]
    lines = ["### Test N@10 by history length (history masked)", "",
             "Users grouped by the number of items before their test item (the whole history, "
             "whatever a model reads of it); each row over its runs that report it.", "",
             *table_header(["model", "variant", "seeds",
                            *(f"{g} items ({s['users']} users)" for g, s in groups.items())])]
    for name, s in rows.items():
        cells = [plus_minus(s["groups"][g]["ndcg@10"], several=len(s["seeds"]) > 1) for g in groups]
        seeds = ", ".join(map(str, s["seeds"]))
        lines.append(f"| {name} | {s['variant']} | {seeds} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=None,
                        help="variants trained now (the rest are read from this script's earlier results); "
                             "default: every variant of the dataset")
    parser.add_argument("--dataset", default=ML100K, help="data.dataset of every run")
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks")
    args = parser.parse_args()
    trainable, earlier_rows, rows = plan(args.dataset)
    args.variants = list(trainable) if args.variants is None else args.variants
    unknown = sorted(set(args.variants) - set(trainable))
    if unknown:
        parser.error(f"--variants {unknown} are not trained on {args.dataset}; choose from {list(trainable)}")
    stem = "table2_ml100k" if args.dataset == ML100K else f"table2_{args.dataset}"
    if args.dataset != ML100K:
        args.set.append(f"data.dataset={args.dataset}")
        args.out = str(Path(args.out) / args.dataset)

    path = RESULTS / f"{stem}.json"
    stored = {(name, r["seed"]): r for name, results in stored_results(path)[1].items() for r in results}
    trained = run_variants(trainable, args, stored)
    # Read again after training: another call may have written its variants meanwhile.
    previous, runs = stored_results(path)
    variants = previous.get("variants", {})
    for name, results in trained.items():
        # This call's seeds replace theirs; a variant's other seeds, trained by another call, stay.
        kept = [r for r in runs.get(name, []) if r["seed"] not in args.seeds]
        runs[name] = sorted(kept + results, key=lambda r: r["seed"])
    for variant in args.variants:
        # Runs of a variant may come from several calls (seeds trained apart, a --reuse call
        # tabulating or finishing them): every call that made or read them is listed.
        made = variants.get(variant, {})
        calls = made.get("commands", [made["command"]] if "command" in made else [])
        variants[variant] = {**table_summary(runs[variant]), "commands": list(dict.fromkeys([*calls, command()])),
                             "load_average_after": made.get("load_average_after", os.getloadavg())}
    for row, (source, names) in earlier_rows.items():
        earlier = json.loads((RESULTS / source).read_text())["runs"]
        for name in names:
            variants[name] = table_summary(earlier[name])

    models, notes = {}, []
    for row, names in rows.items():
        measured = {n: variants[n] for n in names if n in variants}
        if not measured:
            continue
        best = chosen(measured)
        models[row] = {**measured[best], "variant": best}
        if len(measured) > 1:
            notes.append(f"- {row}: **{best}** chosen on validation N@10 ("
                         + ", ".join(f"{n} {s['valid_ndcg@10']['mean']:.4f}" for n, s in measured.items()) + ")")
    # Every HyMiRec variant is shown, not only the chosen one.
    for name in rows["HyMiRec"]:
        if name in variants and name != models.get("HyMiRec", {}).get("variant"):
            models[f"HyMiRec, variant {name!r}"] = {**variants[name], "variant": name}
    meta = {"machine": machine(), "command": command(), "seeds": args.seeds, "slots": args.slots,
            "threads": args.threads, "dataset": args.dataset}
    if not args.variants and "meta" in previous:  # only the tables were rebuilt: keep how runs were made
        meta = {"dataset": args.dataset, **previous["meta"]}
    write_results(stem, {"meta": meta, "models": models, "variants": variants, "runs": runs},
                  markdown(models, notes, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
