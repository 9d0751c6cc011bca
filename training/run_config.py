"""defaults -> ``--config YAML`` -> ``--flags`` for a flat run-config dataclass, and the resolved YAML.

Every field of the dataclass is a flag (``max_steps`` -> ``--max-steps``); a flag given on the command
line wins over the YAML, which wins over the dataclass default. Unknown YAML keys are an error that
names the known ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _flag_type(tp: Any) -> tuple[Any, dict[str, Any]]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _flag_type(args[0])
    if origin is list:
        (inner,) = typing.get_args(tp) or (str,)
        return inner, {"nargs": "+"}
    if tp is bool:
        return (lambda s: str(s).lower() in ("1", "true", "yes", "on")), {"metavar": "true|false"}
    return tp, {}


def build_parser(cls: type, description: str, epilog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="YAML with any of the options below (flags override it)")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        conv, extra = _flag_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = (f.metadata.get("help", "") + f" (default: {default!r})").strip()
        parser.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, type=conv, default=None, help=help_text, **extra
        )
    return parser


def parse_config(cls: type[T], argv: list[str] | None, description: str, epilog: str) -> T:
    """The dataclass built from defaults, then ``--config``, then the flags."""
    parser = build_parser(cls, description, epilog)
    ns = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if ns.config:
        data = yaml.safe_load(Path(ns.config).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{ns.config}: expected a YAML mapping of options, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{ns.config}: unknown option(s) {unknown}; known options: {sorted(known)}")
        values.update(data)
    values.update({k: v for k, v in vars(ns).items() if k != "config" and v is not None})
    return cls(**values)


def load_config(cls: type[T], path: str | Path, **overrides: Any) -> T:
    """A run config from a YAML file (used by tests that check every shipped config parses)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    data.update(overrides)
    return cls(**data)


def write_resolved(config: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    return path


def check_split_fractions(validation: float, test: float, names: tuple[str, str]) -> None:
    """Held-out user shares: each in (0, 1), together below 1 (someone must be left to train on)."""
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ValueError(
            f"{names[0]} and {names[1]} must be in (0, 1) and sum below 1, got {validation} and {test}; "
            "e.g. 0.1 and 0.1"
        )
