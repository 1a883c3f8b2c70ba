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


def test_require_positive_names_the_first_setting_below_one():
    from hymirec.config import require_positive

    require_positive(Inner(a=1), ["a"])
    with pytest.raises(ConfigError, match=r"^x\.a must be >= 1, got 0$"):
        require_positive(Inner(a=0), ["a"], prefix="x.")
    with pytest.raises(KeyError, match="a must be >= 1, got -1"):
        require_positive(Inner(a=-1), ["a"], KeyError)


def _positive_cases():
    """(build-and-validate, error type, message) for each config's count-like settings."""
    from hymirec.codebook.config import CodebookConfig
    from hymirec.codebook.errors import CodebookError
    from hymirec.encoders.config import BackboneConfig, ItemTextConfig, LoraSettings
    from hymirec.encoders.errors import BackboneError
    from hymirec.serving.config import ServeConfig
    from hymirec.training.config import DataConfig, TrainConfig
    from hymirec.training.losses.dmil import DMILConfig

    return [
        (lambda: CodebookConfig(drift_window=0).validate(), CodebookError, "drift_window must be >= 1, got 0"),
        (lambda: LoraSettings(alpha=0).validate(), BackboneError, "lora.alpha must be >= 1, got 0"),
        (lambda: BackboneConfig(num_heads=-2).validate(), BackboneError, "num_heads must be >= 1, got -2"),
        (lambda: ItemTextConfig(max_tokens=0).validate(), BackboneError, "max_tokens must be >= 1, got 0"),
        (lambda: ServeConfig(refresh_events=0), ConfigError, "serve refresh_events must be >= 1, got 0"),
        (lambda: DataConfig(max_len=0).validate(), ValueError, "data.max_len must be >= 1, got 0"),
        (lambda: DataConfig(max_len=50, window_context=50).validate(), ValueError,
         "data.window_context must be in [0, data.max_len=50), got 50"),
        (lambda: TrainConfig(patience=0).validate(), ValueError, "train.patience must be >= 1, got 0"),
        (lambda: DMILConfig(similarity="cosine", cluster_iters=0).validate(), ValueError,
         "cluster_iters must be >= 1, got 0"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_each_config_keeps_its_error_type_and_message_for_a_count_below_one(case):
    build, error, message = _positive_cases()[case]
    with pytest.raises(error) as info:
        build()
    assert type(info.value) is error and str(info.value) == message


@pytest.mark.parametrize("build", [
    lambda: __import__("hymirec.models", fromlist=["SASRecConfig"]).SASRecConfig(dim=0),
    lambda: __import__("hymirec.training.config", fromlist=["TrainConfig"]).TrainConfig(lr=0),
    lambda: __import__("hymirec.training.losses", fromlist=["LossConfig"]).LossConfig(temperature=0),
    lambda: __import__("hymirec.models", fromlist=["HyMiRecConfig"]).HyMiRecConfig(windows="nope"),
])
def test_a_config_with_a_bad_value_cannot_be_made_however_it_is_built(build):
    with pytest.raises(ValueError):
        build()


def test_validation_reads_the_settings_and_changes_nothing():
    config = load_experiment(None, ["train.loss={name: dmil, window: 2}", "train.param_groups={items: {lr: 0.1}}",
                                    "model.name=sasrec", "model.dim=16"])
    before = repr(config)
    config.validate()
    config.train.validate()
    assert repr(config) == before and config.model_config.dim == 16 and config.model == {"name": "sasrec", "dim": 16}


def test_a_count_given_as_true_or_false_is_refused():
    with pytest.raises(ConfigError, match="expected an integer"):
        load_experiment(None, ["train.epochs=true"])
