"""The project's defaults over TRL's trainer configs, shared by ``SFTRunConfig`` and ``DPORunConfig``.

``TrainerDefaults`` is a dataclass mixin placed before ``SFTConfig`` / ``DPOConfig`` in the bases: every
``TrainingArguments`` and TRL field stays an option (``optim``, ``weight_decay``, ``max_grad_norm``,
``torch_compile``, ...), only the defaults below differ from TRL's, and the verbs' older flag names stay
as aliases (``--epochs``, ``--batch-size``, ``--grad-accum``, ``--warmup-ratio``, ``--lr-scheduler``).

Defaults that TRL sets differently, and why they are kept here:

- ``activation_checkpointing=False`` (TRL: on, under the deprecated name ``gradient_checkpointing``): the
  models trained here are small; recomputation would only slow them down;
- ``bf16`` unset means "on for CUDA with bf16 support" (TRL: on whenever fp16 is off, which
  ``TrainingArguments`` rejects on a CPU-only machine); ``use_cpu`` unset means "no CUDA";
- ``output_dir`` unset means ``OUT/checkpoints`` (``out`` is the verb's artefact folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.trainer_utils import SchedulerType


def cuda_bf16() -> bool:
    """What an unset ``bf16`` means: on for a CUDA device with bf16 support, off elsewhere."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@dataclass
class TrainerDefaults:
    """``TrainingArguments`` fields whose project default differs from TRL's (see the module docstring)."""

    output_dir: str | None = field(default=None, metadata={"help": "checkpoints folder (default: OUT/checkpoints)"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs", "aliases": ["--epochs"]})
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "rows per device and step", "aliases": ["--batch-size", "--batch_size"]}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "steps accumulated per update", "aliases": ["--grad-accum", "--grad_accum"]}
    )
    lr_scheduler_type: SchedulerType | str = field(
        default="cosine", metadata={"help": "learning-rate schedule", "aliases": ["--lr-scheduler", "--lr_scheduler"]}
    )
    save_steps: float = field(default=200, metadata={"help": "checkpoint every N steps"})
    save_total_limit: int | None = field(default=2, metadata={"help": "checkpoints kept"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    max_length: int | None = field(default=256, metadata={"help": "tokens per row (prompt + title)"})
    use_cpu: bool | None = field(default=None, metadata={"help": "unset: on when there is no CUDA device"})
    bf16: bool | None = field(default=None, metadata={"help": "unset: on for CUDA with bf16 support"})
    activation_checkpointing: bool | None = field(
        default=False, metadata={"help": "recompute activations in the backward pass (off: small models)"}
    )
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "deprecated name of activation_checkpointing; leave unset"}
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "our collators read every column"})
    disable_tqdm: bool | None = field(default=False, metadata={"help": "hide progress bars"})

    def __post_init__(self) -> None:
        import torch

        if self.output_dir is None:
            self.output_dir = str(Path(self.out) / "checkpoints")  # type: ignore[attr-defined]
        if self.use_cpu is None:
            self.use_cpu = not torch.cuda.is_available()
        if self.bf16 is None:
            self.bf16 = cuda_bf16()
        super().__post_init__()  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        """``TrainingArguments.to_dict``, except that an unset ``*_token`` stays unset: the parent masks every
        one as ``<NAME_TOKEN>``, which ``--config`` would read back as a token (a real one stays masked)."""
        d = super().to_dict()  # type: ignore[misc]
        return {k: None if k.endswith("_token") and getattr(self, k) is None else v for k, v in d.items()}


def warmup_field(default: float) -> Any:
    """``warmup_steps`` with the verb's default; a value below 1 is a share of the total steps."""
    return field(
        default=default,
        metadata={"help": "warm-up steps, or a share of all steps when below 1",
                  "aliases": ["--warmup-ratio", "--warmup_ratio"]},
    )
