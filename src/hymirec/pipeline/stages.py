"""The six stages of ``hymirec run`` and the runner that makes them resumable.

A stage is named by its key in ``STAGES`` (``data``, ``stage1``, ``codebook``, ``stage2``, ``evaluate``,
``report``), never by a number: ``stage1`` and ``stage2`` are the paper's two training stages.

Each stage writes under the run folder and returns a small record (what it made); the runner adds
its time and writes ``stages.json`` atomically after every stage::

    {"config_hash": "<sha256>", "config": {<the hashed settings>},
     "done": {"data": {"seconds": 0.4, ...}, "stage1": {...}, ...}}

A stage in ``done`` is reused. The first stage that is not continues its own partial work (the
trainer's ``resume`` from ``last.safetensors``); the stages after it start over, because what they
read was just made again. A folder made with other settings is refused before any work.

Under ``torchrun`` every process runs the pipeline: the training stages (and stage 1's export of a
trained encoder) are data-parallel, every other stage runs on rank 0 alone while the others wait,
and only rank 0 writes the folder; after each stage the other ranks read its record from
``stages.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from hymirec.config import ConfigError, to_dict
from hymirec.data.dataset import InteractionDataset
from hymirec.distributed import WORLD_OF_ONE, World
from hymirec.io import atomic_write, write_text_atomic
from hymirec.pipeline.config import PipelineConfig

log = logging.getLogger(__name__)

STATE_FILE = "stages.json"
ITEM_EMBEDDINGS = "item_embeddings.safetensors"
CODEBOOK_DIR = "codebook"
CODEBOOK_FILE = f"{CODEBOOK_DIR}/codebook.safetensors"
RESULTS = "results.json"


@dataclass
class Context:
    """What the stages share: the settings, the run folder, its state and the report inputs."""

    config: PipelineConfig
    out: Path
    state: dict[str, Any]
    baselines: dict[str, Any] | None = None
    # Only the first stage that runs may continue partial work; see the module docstring.
    resume: bool = True
    world: World = WORLD_OF_ONE

    @cached_property
    def dataset(self) -> InteractionDataset:
        from hymirec.data.fetch import load_dataset

        return load_dataset(self.config.dataset, self.config.data_dir)


def _train(ctx: Context, stage: str, inject: dict[str, Any] | None = None) -> Path:
    """Run a stage experiment in ``<out>/<stage>``, continuing its checkpoint where allowed."""
    from hymirec.training.run import run_experiment
    from hymirec.training.trainer import LAST

    experiment = ctx.config.experiment(stage, ctx.out, inject)
    resume = ctx.resume and (experiment.run_dir / LAST).is_file()
    run_experiment(experiment, resume=resume, overwrite=not resume)
    return experiment.run_dir


def _copy(source: Path, target: Path) -> None:
    """Copy so that ``target`` is either the old file or the whole new one, never a part."""
    with atomic_write(target) as tmp:
        shutil.copyfile(source, tmp)


def run_data(ctx: Context) -> dict[str, Any]:
    """``data``: fetch (MovieLens-100K) or load the dataset."""
    dataset = ctx.dataset
    return {"dataset": dataset.name, "users": dataset.n_users, "items": dataset.n_items,
            "interactions": len(dataset.interactions)}


def run_stage1(ctx: Context) -> dict[str, Any]:
    """``stage1``: the content encoder trained for recommendation, its item vectors exported to
    ``item_embeddings.safetensors``; without ``stage1`` settings, the pretrained encoder's."""
    if ctx.config.stage1 is None:
        from hymirec.encoders.export import export_pretrained_embeddings

        if not ctx.world.main:
            return {}
        path, _ = export_pretrained_embeddings(ctx.dataset, ctx.config.encoder_settings())
    else:
        from hymirec.runs.restored import export_run_embeddings

        path, _ = export_run_embeddings(_train(ctx, "stage1"))  # both split over the ranks
        if not ctx.world.main:
            return {}
    _copy(path, ctx.out / ITEM_EMBEDDINGS)
    return {"source": "pretrained encoder" if ctx.config.stage1 is None else "stage1 run", "export": str(path)}


def run_codebook(ctx: Context) -> dict[str, Any]:
    """``codebook``: a residual codebook fitted on the item vectors, with its stats and the codebook
    report of ``hymirec codebook report`` (per-layer quality, ``error_per_layer.png``)."""
    if ctx.config.codebook is None:
        return {"skipped": True}
    from hymirec.codebook import CodebookConfig, fit
    from hymirec.codebook.report import build_report, write_report
    from hymirec.encoders.export import read_embeddings

    vectors = read_embeddings(ctx.out / ITEM_EMBEDDINGS)[0][1:].numpy()
    book = fit(vectors, CodebookConfig.from_dict(ctx.config.codebook), progress=True)
    book.save(ctx.out / CODEBOOK_FILE)
    stats = book.stats().to_dict()
    folder = ctx.out / CODEBOOK_DIR
    write_text_atomic(folder / "stats.json", json.dumps(stats, indent=2) + "\n")
    write_report(build_report(folder, vectors), folder)
    # Relative to the run folder, so that the record survives moving the folder.
    return {"path": CODEBOOK_FILE, "bytes_per_item": stats["bytes_per_item"]}


def stage2_injections(ctx: Context) -> dict[str, Any]:
    """The ``model.*`` keys stage 2 reads from earlier stages, for the sections its model's config
    has (whether or not the file sets them): ``items.vectors`` (the item embeddings) and
    ``history.codebook_path`` (the codebook)."""
    sections = ctx.config.stage_experiments["stage2"].model_sections()
    inject = {}
    if "items" in sections:
        inject["model.items.vectors"] = str((ctx.out / ITEM_EMBEDDINGS).resolve())
    codebook = ctx.state["done"].get("codebook", {}).get("path")
    if codebook and "history" in sections:
        inject["model.history.codebook_path"] = str((ctx.out / codebook).resolve())
    return inject


def run_stage2(ctx: Context) -> dict[str, Any]:
    """``stage2``: the HyMiRec experiment, reading what ``stage1`` and ``codebook`` made."""
    inject = stage2_injections(ctx)
    _train(ctx, "stage2", inject)  # split over the ranks
    return {"injected": inject}


def run_evaluate(ctx: Context) -> dict[str, Any]:
    """``evaluate``: the ``stage2`` run's test metrics (measured by its trainer) as ``results.json``."""
    _copy(ctx.out / "stage2" / RESULTS, ctx.out / RESULTS)
    results = json.loads((ctx.out / RESULTS).read_text())
    return {"test_masked": results["test_masked"]}


def run_report(ctx: Context) -> dict[str, Any]:
    """``report``: ``report.md``."""
    from hymirec.pipeline.report import write_report

    write_report(ctx)
    return {}


def report_inputs(ctx: Context) -> dict[str, Any]:
    """What the report shows beyond the hashed settings: a change redoes only the report."""
    from hymirec.encoders.export import cache_key

    return {"report": to_dict(ctx.config.report),
            "baselines": None if ctx.baselines is None else cache_key(ctx.baselines)}


class Stage(NamedTuple):
    """One step of the pipeline: its name in ``stages.json`` and the function that runs it."""

    name: str
    run: Callable[[Context], dict[str, Any]]
    # Settings outside the config hash that the stage's output depends on (None: none).
    inputs: Callable[[Context], dict[str, Any]] | None = None
    # Under torchrun: run by every rank (data-parallel training), not by rank 0 alone.
    every_rank: bool = False


STAGES = (
    Stage("data", run_data),
    Stage("stage1", run_stage1, every_rank=True),
    Stage("codebook", run_codebook),
    Stage("stage2", run_stage2, every_rank=True),
    Stage("evaluate", run_evaluate),
    Stage("report", run_report, report_inputs),
)


def _write_state(out: Path, state: dict[str, Any]) -> None:
    write_text_atomic(out / STATE_FILE, json.dumps(state, indent=2) + "\n")


def open_run_folder(out: Path, config: PipelineConfig) -> dict[str, Any]:
    """The state of run folder ``out`` (a new one is created): refused when it was made with
    other settings, naming them, or when it is a folder of something else."""
    from hymirec.encoders.export import cache_key
    from hymirec.training.config import experiment_defaults
    from hymirec.training.trainer import config_diff

    # Through JSON, so that the settings compare equal to those read back from the file.
    hashed = json.loads(json.dumps(config.hashed(), default=str))
    digest = cache_key(hashed)
    path = out / STATE_FILE
    if path.is_file():
        state = json.loads(path.read_text())
        if state.get("config_hash") != digest:
            defaults = {stage: experiment_defaults(experiment)
                        for stage, experiment in config.stage_experiments.items()}
            diffs = config_diff(state.get("config", {}), hashed, defaults=defaults)
            if diffs:
                names = ", ".join(".".join(d) for d in diffs)
                raise ConfigError(f"{out} was made with other settings ({names}); use another --out or --fresh")
            # Only settings this folder's hymirec did not have yet, at their defaults: the same job.
            state.update(config_hash=digest, config=hashed)
            _write_state(out, state)
        return state
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and has no {STATE_FILE}, so it is not a `hymirec run` folder; "
                          "use another --out or --fresh")
    out.mkdir(parents=True, exist_ok=True)
    state = {"config_hash": digest, "config": hashed, "done": {}}
    _write_state(out, state)
    return state


def join_pipeline_world(config: PipelineConfig) -> World:
    """The process group of a pipeline under torchrun (a world of one without it), joined as its
    training stages train: settings a stage cannot train with under this world (a batch the
    processes do not divide, NCCL without CUDA, stages asking for different backends) are refused
    before any stage runs."""
    from hymirec.training.trainer import join_training_world

    worlds = [join_training_world(experiment)[0] for experiment in config.stage_experiments.values()]
    return worlds[0] if worlds else WORLD_OF_ONE


def _open(config: PipelineConfig, out: Path, fresh: bool, world: World) -> dict[str, Any]:
    """``open_run_folder`` by rank 0 (after ``fresh``'s deletion), then by the other ranks, which
    read what it wrote."""
    if world.main:
        if fresh and out.exists():
            # Only what `hymirec run` made: a mistyped --out must not delete someone's folder.
            if any(out.iterdir()) and not (out / STATE_FILE).is_file():
                raise ConfigError(f"--fresh deletes `hymirec run` folders only; {out} has no {STATE_FILE}")
            shutil.rmtree(out)
        state = open_run_folder(out, config)
    world.barrier()
    return state if world.main else open_run_folder(out, config)


def run_pipeline(
    config: PipelineConfig, out: str | Path, fresh: bool = False, baselines: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run (or finish) the pipeline in ``out``; ``fresh`` deletes the folder first. ``baselines``:
    the table-2 rows shown beside the run in the report. Returns the final state."""
    out = Path(out)
    world = join_pipeline_world(config)
    state = _open(config, out, fresh, world)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    ctx = Context(config, out, state, baselines, world=world)
    for number, stage in enumerate(STAGES, start=1):
        label = f"stage {number}/{len(STAGES)} {stage.name}"
        inputs = stage.inputs(ctx) if stage.inputs else None
        record = state["done"].get(stage.name)
        if record is not None and record.get("inputs") == inputs:
            log.info("%s: reused", label)
            continue
        # The stages after this one read what it is about to make: none of them is done now.
        for later in STAGES[number - 1 :]:
            state["done"].pop(later.name, None)
        if world.main:
            _write_state(out, state)
        log.debug("%s: started", label)
        start = time.perf_counter()
        if world.main or stage.every_rank:
            record = stage.run(ctx)
        world.barrier()
        if world.main:
            record["seconds"] = round(time.perf_counter() - start, 3)
            if inputs is not None:
                record["inputs"] = inputs
            state["done"][stage.name] = record
            _write_state(out, state)
            log.info("%s: done in %.1f s", label, record["seconds"])
        world.barrier()
        if not world.main:
            state.update(json.loads((out / STATE_FILE).read_text()))
        ctx.resume = False
    return state
