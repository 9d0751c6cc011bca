"""One way to read a verb's options: defaults -> ``--config YAML`` -> ``--flags``, into typed dataclasses.

Every verb declares its options as dataclasses (the SFT and DPO verbs extend TRL's ``SFTConfig`` /
``DPOConfig``, so every ``TrainingArguments`` field is reachable) and parses them with :func:`parse`:

- each dataclass field is a flag, under its field name and with dashes (``--max_steps`` or ``--max-steps``);
- ``--config run.yaml`` replaces the defaults with the YAML's values (a flat mapping of field names);
- flags given on the command line win over the YAML;
- a YAML key no dataclass declares is an error that names the file, the key and the known options.

:func:`save_resolved` writes the options a run actually used beside its output, as YAML that ``--config``
reads back. Built on ``transformers.HfArgumentParser``, the parser TRL's own ``TrlParser`` extends; it adds
the project's error for unknown keys and a ``load`` for configs read from a file without a command line.

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Options:
    ...     steps: int = 10
    ...     name: str = "run"
    >>> (opts,) = parse([Options], ["--steps", "3"])
    >>> opts
    Options(steps=3, name='run')
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from creator.records.errors import DataError

T = TypeVar("T")


class ConfigError(DataError):
    """A config file or flag the verb cannot use (unknown option, not a mapping, wrong value)."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a config file, or a ``ConfigError`` that says what the file holds instead."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass the path of a YAML mapping of options")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}); fix the file or write it again") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of option names to values, got {type(data).__name__}")
    return data


def _known(types: Sequence[type]) -> set[str]:
    return {f.name for t in types for f in dataclasses.fields(t) if f.init}


def _check_keys(data: dict[str, Any], types: Sequence[type], source: str) -> None:
    known = _known(types)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown option(s) {unknown}; this verb's options are: {', '.join(sorted(known))}"
        )


def _split_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    rest, path, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise ConfigError("--config needs a path: --config run.yaml")
            path, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return path, rest


def build_parser(types: Sequence[type], description: str | None = None, epilog: str | None = None):
    """The verb's ``HfArgumentParser`` with ``--config`` listed in its help."""
    import argparse

    from transformers import HfArgumentParser

    parser = HfArgumentParser(list(types), description=description, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML with any of the options below (flags override it)")
    return parser


def parse(
    types: Sequence[type], argv: Sequence[str] | None = None, description: str | None = None,
    epilog: str | None = None,
) -> tuple[Any, ...]:
    """One instance per dataclass in ``types``: defaults, then ``--config``, then the flags in ``argv``."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    path, rest = _split_config_flag(argv)
    parser = build_parser(types, description, epilog)
    if path is not None:
        data = read_yaml(path)
        _check_keys(data, types, path)
        for action in parser._actions:
            if action.dest in data:
                action.default = data[action.dest]
                action.required = False
    return tuple(parser.parse_args_into_dataclasses(args=rest))[: len(types)]  # not the --config namespace


def load(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """A config from a YAML file and keyword overrides, without a command line (tests, Python callers)."""
    data = read_yaml(path) if path is not None else {}
    data.update(overrides)
    _check_keys(data, [cls], str(path) if path is not None else cls.__name__)
    return cls(**data)


def as_dict(config: Any) -> dict[str, Any]:
    """A config's fields as plain YAML-safe values (``TrainingArguments`` subclasses via their ``to_dict``)."""
    data = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    return {k: _plain(v) for k, v in data.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def save_resolved(path: str | Path, *configs: Any) -> Path:
    """The options a run used, as one YAML mapping that ``--config`` reads back."""
    merged: dict[str, Any] = {}
    for config in configs:
        merged.update(as_dict(config))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def run_verb(parse_config: Callable[[Sequence[str] | None], Any], run: Callable[[Any], Any],
             argv: Sequence[str] | None = None) -> int:
    """A verb's ``main``: parse its options, then ``run`` them. A bad option is one ``error:`` line on stderr and
    exit status 2, nothing run; ``run`` returning an int is the exit status, anything else means 0."""
    import sys

    try:
        config = parse_config(argv)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = run(config)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
