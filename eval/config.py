"""``EvalConfig``: what ``hllm-creator eval`` compares and how. Defaults -> ``--config YAML`` -> flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.metrics.compliance import parse_channel

GROUP_BY = ("category", "brand")


@dataclass
class EvalConfig:
    """Systems (name -> creatives file) compared on the same (user, ad) pairs of one catalog.

    ``segments``: name -> user/segment table for systems keyed by ``segment_id`` (``"*"`` applies to all).
    ``judge``: ``"similarity"`` (the MiniLM proxy), a reward-model folder, or ``None`` for no judge.
    ``calls``: name -> generation calls, overriding the count read from the creatives file.
    """

    systems: dict[str, str] = field(default_factory=dict)
    ads: str = ""
    users: str | None = None
    out: str = "runs/eval"
    format: str = "auto"
    segments: dict[str, str] = field(default_factory=dict)
    pairs: str | None = None
    references: str | None = None
    judge: str | None = None
    judge_margin: float = 0.01
    channels: list[str] = field(default_factory=lambda: ["title", "headline"])
    # a creator.channels.presets preset (google-rsa-headline, ...): made the primary channel of the compliance table
    channel: str | None = None
    banned_words: list[str] = field(default_factory=list)
    calls: dict[str, float] = field(default_factory=dict)
    max_pairs: int | None = 2000
    bootstrap: int = 1000
    seed: int = 0
    worst_k: int = 5
    # the side-by-side sheet: this many random (original, served) pairs per system, drawn from the users
    # listed in sheet_users (a file, one user id a line: the held-out users) or, without it, every pair's user
    sheet_pairs: int = 30
    sheet_users: str | None = None
    group_by: str = "category"
    encoder: str = "minilm"
    cache_dir: str | None = None
    # fluency per system (creator.guard.fluency): reference LM (auto, gemma-270m or an LM folder); None = not measured
    fluency: str | None = None
    fluency_percentile: float = 95.0
    fluency_normalize: str = "unigram"  # the gate's statistic: NLL in excess of the catalog unigram's, or "none"

    def __post_init__(self) -> None:
        if not self.systems:
            raise ValueError("no systems: pass --systems NAME=PATH (creatives file) at least once")
        if "original" in self.systems:
            raise ValueError("'original' (the ad's own title) is always added; name your system otherwise")
        for name in self.systems:
            if not name or "=" in name or "/" in name:
                raise ValueError(
                    f"bad system name {name!r}: use a short label such as sft-dpo (no '=' or '/')"
                )
        if not self.ads:
            raise ValueError("no catalog: pass --ads PATH (the ads the creatives were written for)")
        unknown = sorted(set(self.segments) - set(self.systems) - {"*"})
        if unknown:
            raise ValueError(
                f"--segments names unknown systems {unknown}; use names from --systems "
                f"{sorted(self.systems)} or '*' for all"
            )
        unknown = sorted(set(self.calls) - set(self.systems) - {"original"})
        if unknown:
            raise ValueError(f"--calls names unknown systems {unknown}; use names from --systems")
        if self.channel is not None:
            from creator.channels.presets import get_channel

            self.channel = get_channel(self.channel).name
            self.channels = [self.channel, *(c for c in self.channels if c != self.channel)]
        for spec in self.channels:
            parse_channel(spec)  # raises with the fix
        if self.group_by not in GROUP_BY:
            raise ValueError(f"group_by must be one of {GROUP_BY}, got {self.group_by!r}")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ValueError(f"max_pairs must be >= 1 or null (all pairs), got {self.max_pairs}")
        if self.bootstrap < 10:
            raise ValueError(f"bootstrap must be >= 10 resamples (1000 is usual), got {self.bootstrap}")
        if not 0 <= self.judge_margin < 1:
            raise ValueError(f"judge_margin must be in [0, 1), got {self.judge_margin}; 0.01 is usual")
        if not 0 < self.fluency_percentile <= 100:
            raise ValueError(f"fluency_percentile must be in (0, 100], got {self.fluency_percentile}; 95 is usual")
        if self.fluency_normalize not in ("none", "unigram"):
            raise ValueError(f"fluency_normalize must be 'none' or 'unigram', got {self.fluency_normalize!r}")
        if self.sheet_pairs < 0:
            raise ValueError(f"sheet_pairs must be >= 0 (0 = no side-by-side sheet), got {self.sheet_pairs}")
        if self.sheet_users and not Path(self.sheet_users).is_file():
            raise ValueError(f"sheet_users: {self.sheet_users} is not a file; give a file with one user id a line")
        if self.worst_k < 1:
            raise ValueError(f"worst_k must be >= 1, got {self.worst_k}")

    def segment_table(self, name: str) -> str | None:
        return self.segments.get(name) or self.segments.get("*")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path


def parse_named(values: list[str] | None, flag: str, *, number: bool = False) -> dict[str, Any]:
    """['a=x', 'b=y'] -> {'a': 'x', 'b': 'y'}; a clear error for a value without NAME=."""
    out: dict[str, Any] = {}
    for v in values or []:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise ValueError(
                f"{flag} expects NAME=VALUE, got {v!r}; e.g. {flag} sft=runs/sft/creatives.jsonl"
            )
        if number:
            try:
                out[name] = float(rest)
            except ValueError:
                raise ValueError(f"{flag} {v!r}: the value must be a number, e.g. {flag} sft=512") from None
        else:
            out[name] = rest
    return out
