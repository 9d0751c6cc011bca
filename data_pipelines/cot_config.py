"""Configuration of ``hllm-creator build-cot``: one dataclass, defaults -> --config YAML -> --flags."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TEACHERS = ("offline", "openai", "hf")
SPLITS = ("train", "validation", "test")


@dataclass
class CoTConfig:
    """Everything one CoT build depends on; written next to the output as ``resolved_config.yaml``."""

    data: str = ""
    out: str = ""
    format: str = "auto"
    teacher: str = "offline"
    teacher_model: str = ""
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 4
    hf_batch_size: int = 8
    # --teacher hf: chat (JSON prompts, instruction-tuned models), fewshot (completion prompts with worked
    # examples, for a base model such as gemma-270m), auto (fewshot when the model has no chat template)
    hf_prompt: str = "auto"
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0
    limit: int | None = None
    min_history: int = 1
    history_len: int = 50
    candidates: int = 4
    max_chars: int = 120
    # a creator.channels.presets preset: the teacher is asked for, and the guard holds titles to, its length and rules
    # (its max_chars replaces max_chars); generic keeps the settings above as they are
    channel: str = "generic"
    max_added_chars: int | None = 40
    llm_fact_check: bool = False
    scorer: str = "lexical"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    chunk_rows: int = 256
    cache: str | None = None
    embed_cache: str | None = None
    known_brands: list[str] = field(default_factory=list)
    # catalogs (anything load_catalog reads) whose users get no rows: keep another run's evaluation users unseen
    # (the shipped Gemma adapter was trained without the bundled sample's users); counted in the summary
    exclude_users: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}, got {self.teacher!r}")
        if self.teacher in ("openai", "hf") and not self.teacher_model:
            raise ValueError(
                f"--teacher {self.teacher} needs --teacher-model (e.g. Qwen/Qwen3-8B for vllm serve, "
                "or a local HF folder for hf)"
            )
        if self.teacher == "offline" and self.teacher_model not in ("", "profile", "similarity"):
            raise ValueError(
                f"--teacher offline takes --teacher-model profile (the default) or similarity (the earlier "
                f"teacher), got {self.teacher_model!r}"
            )
        if self.teacher == "offline" and self.llm_fact_check:
            raise ValueError(
                "--llm-fact-check needs an LLM teacher (openai or hf); the offline teacher is checked "
                "by the rule-based guard"
            )
        from creator.channels.presets import get_channel

        ch = get_channel(self.channel)
        if ch.name != "generic":
            self.max_chars = ch.max_chars
        for name in ("concurrency", "candidates", "history_len", "chunk_rows", "max_chars", "hf_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hf_prompt not in ("auto", "chat", "fewshot"):
            raise ValueError(f"hf_prompt must be auto, chat or fewshot, got {self.hf_prompt!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(
                f"limit must be >= 1 or unset, got {self.limit}; leave it out to build every row"
            )
        if (
            not 0 <= self.validation_fraction < 1
            or not 0 <= self.test_fraction < 1
            or self.validation_fraction + self.test_fraction >= 1
        ):
            raise ValueError(
                "validation_fraction and test_fraction must be in [0, 1) and sum below 1 "
                f"(got {self.validation_fraction} + {self.test_fraction})"
            )
        if self.max_added_chars is not None and self.max_added_chars < 0:
            raise ValueError(f"max_added_chars must be >= 0 or unset, got {self.max_added_chars}")

    @property
    def cache_path(self) -> Path:
        return Path(self.cache) if self.cache else Path(self.out) / "cache.sqlite"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("api_key"):
            d["api_key"] = "***"  # never write a secret next to the data
        return d

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


def split_of(user_id: str, cfg: CoTConfig) -> str:
    """train | validation | test from a hash of the user id and the seed: all rows of a user in one split."""
    h = int(hashlib.sha256(f"{cfg.seed}:{user_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < cfg.test_fraction:
        return "test"
    if h < cfg.test_fraction + cfg.validation_fraction:
        return "validation"
    return "train"
