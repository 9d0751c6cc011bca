"""Configuration of ``train-encoders``: defaults -> ``--config`` YAML -> ``--flags``, validated on build.

>>> EncodersConfig(epochs=2).epochs
2
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from training.run_config import check_split_fractions


@dataclass
class EncodersConfig:
    """Every knob of the user-model training run, with the defaults used on Office_Products."""

    # item encoder: "minilm", a sentence-transformers path, or "lm:<HF causal LM path>" (HLLM item token)
    item_encoder: str = "minilm"
    cache_dir: str | None = ".cache/item_vectors"  # item vectors are computed once per text and model
    # user encoder
    max_history: int = 50
    dim: int | None = None  # None: user vectors live in the item space (dim = item_dim)
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    dropout: float = 0.2
    mean_skip: bool = True
    item_tower: bool = True
    backbone: str | None = None  # HF causal LM id/path for the user encoder; None = small transformer
    # next-item pretraining
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    sampled_negatives: int = 1024  # >= catalog size means the whole catalog
    patience: int = 5
    history_dropout: float = 0.1
    # match head
    match_negatives: int = 8
    match_hidden: int = 128
    match_epochs: int = 8
    # data
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_users: int | None = None
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_history",
            "hidden",
            "layers",
            "heads",
            "epochs",
            "batch_size",
            "patience",
            "match_negatives",
            "match_hidden",
            "match_epochs",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}; set a positive integer")
        if self.sampled_negatives < 0:
            raise ValueError(f"sampled_negatives must be >= 0, got {self.sampled_negatives}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}; e.g. 1e-3")
        for name in ("dropout", "history_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        check_split_fractions(self.validation_fraction, self.test_fraction, ("validation_fraction", "test_fraction"))
        if self.backbone is None and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> dict[str, Any]:
        """The YAML's fields as a dict, with unknown keys rejected by name."""
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(
                f"{path}: expected a YAML mapping of EncodersConfig fields, got {type(raw).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {unknown}; expected some of {sorted(known)}")
        hints = typing.get_type_hints(cls)
        for name, value in raw.items():
            kind = _base_type(hints[name])
            if isinstance(value, str) and kind is not str:  # YAML reads 1e-3 as a string
                try:
                    raw[name] = _parse(kind, kind is not hints[name])(value)
                except (ValueError, argparse.ArgumentTypeError):
                    raise ValueError(
                        f"{path}: field {name} must be {kind.__name__}, got {value!r}"
                    ) from None
        return raw


def _base_type(tp: Any) -> type:
    """``int | None`` -> int; ``bool`` stays bool."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _parse(kind: type, optional: bool):
    def parse(text: str):
        if optional and text.lower() in ("none", "null", ""):
            return None
        if kind is bool:
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")
        return kind(text)

    return parse


def add_config_flags(group) -> None:
    """One ``--field-name`` flag per EncodersConfig field (default: not given, so the YAML value stands)."""
    hints = typing.get_type_hints(EncodersConfig)
    for f in fields(EncodersConfig):
        tp = hints[f.name]
        optional = _base_type(tp) is not tp
        kind = _base_type(tp)
        group.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f"cfg_{f.name}",
            default=argparse.SUPPRESS,
            type=_parse(kind, optional),
            metavar=kind.__name__.upper(),
            help=f"default {f.default!r}",
        )


def resolve_config(args: argparse.Namespace) -> EncodersConfig:
    values: dict[str, Any] = EncodersConfig.from_yaml(args.config) if getattr(args, "config", None) else {}
    for f in fields(EncodersConfig):
        if hasattr(args, f"cfg_{f.name}"):
            values[f.name] = getattr(args, f"cfg_{f.name}")
    return dataclasses.replace(EncodersConfig(), **values)
