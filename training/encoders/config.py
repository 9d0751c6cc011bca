"""Configuration of ``train-encoders``: defaults -> ``--config`` YAML -> ``--flags`` (``creator.config.parse``),
validated on build.

>>> EncodersConfig(epochs=2).epochs
2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from training.encoders.ranking import check_split_fractions

# where the run reads and writes: not part of what is trained (the resume digest leaves them out)
RUN_FIELDS = ("data", "format", "out", "progress")


@dataclass
class EncodersConfig:
    """Every knob of the user-model training run, with the defaults used on Office_Products."""

    data: str = field(default="", metadata={"help": "catalog folder or file (required)"})
    format: str = field(default="auto", metadata={"help": "amazon2018 | mind | jsonl | csv | parquet | hllm | auto"})
    out: str = field(default="", metadata={"help": "output folder (required)"})
    progress: bool = field(default=True, metadata={"help": "progress bars (--no-progress hides them)"})

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

    def trained_fields(self) -> dict[str, Any]:
        """The fields that decide what is trained (the resume checkpoint's digest covers these)."""
        return {k: v for k, v in asdict(self).items() if k not in RUN_FIELDS}
