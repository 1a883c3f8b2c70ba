"""The pipeline configuration (``hymirec run``): a preset or YAML file, ``--set`` and ``--dataset``.

A pipeline names its dataset once; each stage experiment (``stage1``, ``stage2``) is an ordinary
``ExperimentConfig`` mapping whose ``name``, ``out_dir`` and data location the pipeline sets. Every
part is checked when the config is loaded (unknown keys, ill-typed values, unknown models), so a
typo fails before the first stage starts.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hymirec.codebook.config import CodebookConfig
from hymirec.config import ConfigError, Settings, apply_overrides, from_dict, load_yaml, set_key, to_dict
from hymirec.encoders.config import ItemTextConfig
from hymirec.training.config import ExperimentConfig

DEFAULT_PRESET = "default"
STAGE_EXPERIMENTS = ("stage1", "stage2")
# Settings that change how a run is shown, never what it computes: outside the config hash.
UNHASHED_STAGE_KEYS = ("name", "out_dir")
UNHASHED_TRAIN_KEYS = ("progress",)


@dataclass
class ReportConfig(Settings):
    """What ``report.md`` shows: the top-``k`` of the first ``users`` test users."""

    users: int = 3
    k: int = 10

    def validate(self) -> None:
        if self.users < 0 or self.k < 1:
            raise ValueError(f"report.users must be >= 0 and report.k >= 1, got {self.users} and {self.k}")


@dataclass
class PipelineConfig(Settings):
    """The whole job. ``stage1``: the content-encoder experiment (null: export the pretrained
    encoder that ``stage2.model.items`` names instead); ``codebook``: ``CodebookConfig``
    settings (null: no codebook); ``stage2``: the HyMiRec experiment. ``threads`` caps the CPU
    threads of the whole run (0: PyTorch's default)."""

    name: str = DEFAULT_PRESET
    dataset: str = "movielens-100k"
    data_dir: str | None = None
    stage1: dict[str, Any] | None = None
    codebook: dict[str, Any] | None = None
    stage2: dict[str, Any] = field(default_factory=dict)
    report: ReportConfig = field(default_factory=ReportConfig)
    threads: int = 0

    def validate(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: one per core), got {self.threads}")
        for stage in STAGE_EXPERIMENTS:
            mapping = getattr(self, stage)
            if mapping is not None:
                setattr(self, stage, self._with_data(stage, mapping))
        self.stage_experiments  # reads and checks every key of every stage (once: the result is kept)
        if self.codebook is not None:
            CodebookConfig.from_dict(self.codebook)
        if self.stage1 is None:
            self.encoder_settings()  # stage 1 is then the pretrained export: it needs an encoder

    def _with_data(self, stage: str, mapping: dict[str, Any]) -> dict[str, Any]:
        # The pipeline's dataset is the stages' dataset; a stage naming another is a mistake.
        if not isinstance(mapping, dict):
            raise ValueError(f"{stage} must be an experiment mapping, got {mapping!r}")
        mapping = copy.deepcopy(mapping)
        data = mapping.setdefault("data", {})
        for key in ("dataset", "data_dir"):
            ours = getattr(self, key)
            if data.get(key, ours) != ours:
                raise ValueError(
                    f"{stage}.data.{key} is {data[key]!r} but the pipeline's {key} is {ours!r}; "
                    f"set {key} at the top level (or --dataset) for every stage"
                )
            data[key] = ours
        return mapping

    def experiment(self, stage: str, out: Path, inject: dict[str, Any] | None = None) -> ExperimentConfig:
        """Stage ``stage``'s experiment, its run folder ``out/stage``; ``inject``: dotted
        ``model.*`` keys the pipeline adds (what earlier stages produced), set as values."""
        mapping = copy.deepcopy(getattr(self, stage))
        mapping.update(name=stage, out_dir=str(out))
        for key, value in (inject or {}).items():
            set_key(mapping, key, value)
        return from_dict(ExperimentConfig, mapping, stage)

    @functools.cached_property
    def stage_experiments(self) -> dict[str, ExperimentConfig]:
        """Each stage's experiment as settings alone (no run folder, nothing injected), read once:
        what the hash, the defaults of a reused folder and the injections look at."""
        return {stage: self.experiment(stage, Path(".")) for stage in STAGE_EXPERIMENTS
                if getattr(self, stage) is not None}

    def encoder_settings(self) -> ItemTextConfig:
        """The item-text settings of ``stage2.model.items`` as an ``ItemTextConfig`` (without the
        model-only keys): what a pipeline without stage 1 exports."""
        items = self.stage2.get("model", {}).get("items")
        if not isinstance(items, dict):
            raise ValueError(
                "stage1 is null and stage2.model has no items settings: there is no encoder to export"
            )
        return ItemTextConfig.of_model_items(items, "stage2.model.items")

    def hashed(self) -> dict[str, Any]:
        """The settings that determine what the stages compute (resolved, defaults filled in)."""
        out: dict[str, Any] = {"dataset": self.dataset, "data_dir": self.data_dir}
        for stage in STAGE_EXPERIMENTS:
            if stage not in self.stage_experiments:
                out[stage] = None
                continue
            resolved = to_dict(self.stage_experiments[stage])
            for key in UNHASHED_STAGE_KEYS:
                resolved.pop(key)
            for key in UNHASHED_TRAIN_KEYS:
                resolved["train"].pop(key)
            out[stage] = resolved
        out["codebook"] = None if self.codebook is None else CodebookConfig.from_dict(self.codebook).to_dict()
        return out


def preset_names() -> list[str]:
    """The presets shipped with the package."""
    return sorted(p.name.removesuffix(".yaml") for p in _presets().iterdir() if p.name.endswith(".yaml"))


def _presets():
    return resources.files("hymirec.pipeline").joinpath("presets")


def load_pipeline(
    preset: str | None = None, path: str | Path | None = None, overrides: list[str] | None = None,
    dataset: str | None = None,
) -> PipelineConfig:
    """A preset (by name, ``default`` when neither is given) or a YAML file, then ``--set``
    overrides (dotted keys: ``stage2.train.lr=1e-4``); ``dataset`` replaces the dataset of
    the pipeline and of both stages."""
    if preset is not None and path is not None:
        raise ConfigError("give a preset or a config file, not both")
    if path is None:
        preset = preset or DEFAULT_PRESET
        source = _presets().joinpath(f"{preset}.yaml")
        if not source.is_file():
            raise ConfigError(f"unknown preset {preset!r}; the presets are {preset_names()}")
        with resources.as_file(source) as file:
            where, data = f"preset {preset}", load_yaml(file)
    else:
        where, data = str(path), load_yaml(path)
    data = apply_overrides(data, overrides or [])
    if dataset is not None:
        data["dataset"] = dataset
        for stage in STAGE_EXPERIMENTS:
            if isinstance(data.get(stage), dict):
                data[stage].setdefault("data", {})["dataset"] = dataset
    return from_dict(PipelineConfig, data, where)
