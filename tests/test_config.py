from dataclasses import dataclass, field

import pytest

from hymirec.config import ConfigError, apply_overrides, from_dict
from hymirec.training.config import ExperimentConfig, load_experiment


@dataclass
class Inner:
    a: int = 1
    b: float | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    names: list[str] = field(default_factory=list)


def test_unknown_keys_are_rejected_with_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"config.inner: unknown key\(s\) \['c'\]; allowed keys are \['a', 'b'\]"):
        from_dict(Outer, {"inner": {"c": 3}})


def test_types_are_checked_and_ints_promote_to_float():
    assert from_dict(Outer, {"inner": {"b": 2}}).inner.b == 2.0
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(Outer, {"inner": {"a": "x"}})
    with pytest.raises(ConfigError, match="expected a list"):
        from_dict(Outer, {"names": "x"})


def test_overrides_parse_yaml_values():
    data = apply_overrides({}, ["train.lr=0.001", "model.name=gru4rec", "eval.ks=[10, 20]"])
    assert data == {"train": {"lr": 0.001}, "model": {"name": "gru4rec"}, "eval": {"ks": [10, 20]}}
    # YAML 1.1 reads 1e-3 as a string; float settings still accept it.
    assert load_experiment(None, ["train.lr=1e-3"]).train.lr == 1e-3
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["train.lr"])


def test_experiment_yaml_with_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\nmodel: {name: sasrec, dim: 32}\ntrain: {lr: 0.01}\n")
    cfg = load_experiment(path, ["train.lr=0.002", "model.num_layers=1"])
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.train.lr == 0.002 and cfg.model == {"name": "sasrec", "dim": 32, "num_layers": 1}


def test_experiment_rejects_unknown_model_and_model_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        load_experiment(None, ["model.name=nope"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_experiment(None, ["model.name=sasrec", "model.bogus=1"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_experiment(None, ["train.lrr=1"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(bad)
