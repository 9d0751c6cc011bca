"""The ``train-reward`` run config: defaults -> ``--config`` YAML -> flags (``creator.config.parse``).

Every field is a flag (``--corruption-negatives 5``, ``--refit false``). The net's options are the YAML's
``model:`` block; on the command line ``--model '{proj_dim: 32, gaming: {copy_weight: 10}}'`` (a YAML
mapping) replaces that block as a whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from creator.reward.model import RewardConfig
from training.encoders.ranking import check_split_fractions
from training.reward.corruptions import CORRUPTIONS
from training.reward.data import SAMPLINGS


@dataclass
class RewardTrainConfig:
    """Everything ``train-reward`` does; defaults -> ``--config`` YAML -> flags."""

    data: str = ""
    format: str = "auto"
    out: str = "runs/reward"
    negatives: int = 8  # sampled negatives per positive (training)
    sampling: str = "uniform"  # uniform | popularity | same-category
    popularity_alpha: float = 0.75
    eval_negatives: int = 8
    eval_samplings: list[str] = field(default_factory=lambda: ["uniform", "popularity", "same-category"])
    min_history: int = 1
    val_fraction: float = 0.1  # users for early stopping
    test_fraction: float = 0.1  # users for the reported metrics
    max_users: int | None = None
    use_impressions: bool = True
    epochs: int = 8
    patience: int = 2
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    refit: bool = False  # then train again on training + validation users for the epochs validation chose
    # share of training rows (positives and negatives alike) whose title is one of its ad's rule-based rewrites
    # (training.reward.data.title_rewrites), so that a rewrite is not read as "not the real item"; 0 = off
    rewrite_fraction: float = 0.0
    rewrites_per_ad: int = 4
    # label-0 rows per positive: the same user prefix and ad with a corrupted title (training.reward.corruptions:
    # shuffled words, a hook cut mid-phrase, stacked connectives, stray colons, facts dropped); 0 = off.
    # The real title's win rate over each kind is measured on the test users either way.
    corruption_negatives: int = 0
    # how they are learnt: "pairwise" = softplus(z_corrupted - z_real) against the real title of the same user
    # and ad, weighted by corruption_weight, outside the click loss; "label" = plain label-0 rows in the click
    # loss (they share the positive's co-occurrence features, so they dilute them: see docs/reward.md)
    corruption_loss: str = "pairwise"
    corruption_weight: float = 1.0
    corruption_kinds: list[str] = field(default_factory=lambda: list(CORRUPTIONS))
    seed: int = 0
    threads: int = 1
    cache_dir: str | None = ".cache/embeddings"
    user_model_dir: str | None = None
    # with user_model_dir: false keeps its user split and match-head baseline, but the judge pools the history
    # itself instead of reading the user model's vector (the with/without comparison on the same users)
    user_vectors: bool = True
    # the net (creator.reward.model.RewardConfig): a mapping in YAML, a YAML mapping string as a flag
    model: dict | str | RewardConfig | None = field(
        default=None, metadata={"help": "the reward net's options as a YAML mapping, e.g. '{proj_dim: 32}'"}
    )

    def __post_init__(self) -> None:
        if self.model is None or isinstance(self.model, str):
            text = self.model
            self.model = yaml.safe_load(text) if text else {}
            if not isinstance(self.model, dict):
                raise ValueError(f"--model expects a YAML mapping such as '{{proj_dim: 32}}', got {text!r}")
        if isinstance(self.model, dict):
            self.model = RewardConfig(**self.model)
        for s in [self.sampling, *self.eval_samplings]:
            if s not in SAMPLINGS:
                raise ValueError(f"unknown sampling {s!r}; use one of {', '.join(SAMPLINGS)}")
        if self.negatives < 1 or self.eval_negatives < 1:
            raise ValueError("negatives and eval_negatives must be >= 1 (8 is the reported setting)")
        check_split_fractions(self.val_fraction, self.test_fraction, ("val_fraction", "test_fraction"))
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if not 0 <= self.rewrite_fraction <= 1 or self.rewrites_per_ad < 1:
            raise ValueError(f"rewrite_fraction must be in [0, 1] (0 = off) and rewrites_per_ad >= 1, got "
                             f"{self.rewrite_fraction} and {self.rewrites_per_ad}")
        if self.corruption_negatives < 0:
            raise ValueError(f"corruption_negatives must be >= 0 (0 = off), got {self.corruption_negatives}")
        if self.corruption_loss not in ("pairwise", "label") or self.corruption_weight < 0:
            raise ValueError(f"corruption_loss must be 'pairwise' or 'label' and corruption_weight >= 0, got "
                             f"{self.corruption_loss!r} and {self.corruption_weight}")
        bad = sorted(set(self.corruption_kinds) - set(CORRUPTIONS))
        if bad or not self.corruption_kinds:
            raise ValueError(f"corruption_kinds: unknown or empty {bad or self.corruption_kinds}; use any of "
                             f"{list(CORRUPTIONS)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns the weight average off), got {self.ema_decay}")
        if self.user_model_dir:
            # absolute here, so it resolves from any working folder; saved relative to the model's folder
            self.user_model_dir = str(Path(self.user_model_dir).resolve())
            self.model.user_model_dir = self.user_model_dir if self.user_vectors else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


@dataclass
class ResumeOption:
    """``--resume``: continue from ``OUT/checkpoint.pt`` (an option of the run, not of the judge)."""

    resume: bool = field(default=False, metadata={"help": "continue from OUT/checkpoint.pt after an interruption"})
