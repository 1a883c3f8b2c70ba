"""Typed configuration: dataclasses loaded from YAML, unknown keys rejected, CLI overrides.

Every config section is a dataclass. ``from_dict`` builds one from plain data and refuses keys the
dataclass does not declare, naming the offending key and the keys that are allowed, so that a typo
in a YAML file is an error rather than a silently ignored setting. ``apply_overrides`` applies
``section.key=value`` strings (the CLI's ``--set``), parsing each value as YAML.

A field typed with a base class that has a ``from_settings(value, where)`` classmethod holds one
of a family of configs named inside its settings (``train.loss: {name: dmil, ...}``): that
classmethod picks the member, so the typed member is what the field holds from then on.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message says where and why."""


class Settings:
    """Base of the config dataclasses: a config checks itself when it is made (``validate``, called
    by ``__post_init__``), so a config object in hand is a valid one however it was built --
    ``from_dict``, a constructor call or ``dataclasses.replace``. ``validate`` raises
    ``ValueError`` naming the setting and changes nothing."""

    def __post_init__(self) -> None:
        for name, tp in typing.get_type_hints(type(self)).items():
            # A choice among names (``windows: tile | sample``) is checked here for every config,
            # as from_dict checks it for a file.
            if typing.get_origin(tp) is typing.Literal and getattr(self, name) not in typing.get_args(tp):
                raise ValueError(f"{name} must be one of {list(typing.get_args(tp))}, got {getattr(self, name)!r}")
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for the first setting out of range (nothing to check here)."""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        value_tp = args[1] if args else Any
        return {k: _coerce(v, value_tp, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(value, tp):
        return value  # a config already built (and so checked)
    if hasattr(tp, "from_settings"):
        # A family of configs chosen by a name inside the settings (the losses): the base class
        # picks the member and builds it.
        return tp.from_settings(value, where)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads "1e-3" (no dot) as a string; accept any float literal.
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def require_positive(
    settings: object, names: Iterable[str], error: type[Exception] = ConfigError, prefix: str = ""
) -> None:
    """Raise ``error("<prefix><name> must be >= 1, got <value>")`` for the first of ``names``
    (attributes of ``settings``) that is below 1: the check of every count-like setting."""
    for name in names:
        value = getattr(settings, name)
        if value < 1:
            raise error(f"{prefix}{name} must be >= 1, got {value}")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and ill-typed values."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        obj = cls(**kwargs)  # a Settings subclass validates itself here
        validate = getattr(obj, "validate", None)
        if callable(validate) and not isinstance(obj, Settings):
            validate()
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-data form of a config dataclass (round-trips through ``from_dict``)."""
    return dataclasses.asdict(obj)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for missing files and bad syntax."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to nested plain data; values are parsed as YAML."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
        set_key(data, key, value, f"override {item!r}")
    return data


def set_key(data: dict[str, Any], key: str, value: Any, where: str | None = None) -> dict[str, Any]:
    """Set dotted ``key`` (``a.b.c``) of nested plain data to ``value`` as it is, creating the
    sections on the way: what an override does once its value is parsed, and how a program passes
    a value (a path, a number) into settings without writing it out as text."""
    where = where or f"key {key!r}"
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{where}: empty key segment")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value
    return data
