"""The options of ``hllm-creator eval``: ``EvalConfig``.

Parsed by ``creator.config.parse``: defaults -> ``--config YAML`` -> flags. Options that name
things (``--systems NAME=PATH``, ``--segments NAME=PATH``, ``--calls NAME=N``) are mappings: a mapping in
YAML or Python, ``NAME=VALUE`` on the command line (repeat the flag; each adds or replaces one name of the
YAML's mapping).

    >>> from creator.config import parse
    >>> (cfg,) = parse([EvalConfig], ["--ads", "cat/", "--systems", "a=a.jsonl", "--systems", "b=b.csv"])
    >>> cfg.systems
    {'a': 'a.jsonl', 'b': 'b.csv'}
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.metrics.compliance import parse_channel

GROUP_BY = ("category", "brand")


def parse_named(values: Any, flag: str, *, number: bool = False) -> dict[str, Any]:
    """['a=x', 'b=y'] -> {'a': 'x', 'b': 'y'}; a mapping is kept as it is; a clear error for a value without NAME=.

    >>> parse_named(["sft=runs/sft.jsonl"], "--systems")
    {'sft': 'runs/sft.jsonl'}
    >>> parse_named(["seg=2"], "--calls", number=True)
    {'seg': 2.0}
    """
    if values is None:
        return {}
    if isinstance(values, dict):
        return dict(values)
    if isinstance(values, str):
        values = [values]
    out: dict[str, Any] = {}
    for v in values:
        name, sep, rest = str(v).partition("=")
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


class NamedValues(argparse.Action):
    """``--flag NAME=VALUE [NAME=VALUE ...]`` for a ``dict[str, T]`` option: repeatable, merged over the mapping
    the YAML (or the default) gave; the values are read by ``parse_named`` (numbers for ``dict[str, float]``)."""

    def __init__(self, option_strings: list[str], dest: str, type: Any = None, **kwargs: Any) -> None:
        # HfArgumentParser passes the field's type (dict[str, T]); the action reads the raw strings itself
        self.number = getattr(type, "__args__", (str, str))[-1] is float
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        flag = option_string or f"--{self.dest}"
        merged = parse_named(getattr(namespace, self.dest, None), flag, number=self.number)
        merged.update(parse_named(values, flag, number=self.number))
        setattr(namespace, self.dest, merged)


def named(metavar: str, text: str) -> Any:
    """A ``dict[str, T]`` option given as repeatable ``--flag NAME=VALUE`` (see ``NamedValues``)."""
    return field(default_factory=dict,
                 metadata={"action": NamedValues, "nargs": "+", "metavar": metavar, "help": text})


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EvalConfig:
    """Systems (name -> creatives file) compared on the same (user, ad) pairs of one catalog.

    ``segments``: name -> user/segment table for systems keyed by ``segment_id`` (``"*"`` applies to all).
    ``judge``: ``"similarity"`` (the MiniLM proxy), a reward-model folder, or ``None`` for no judge.
    ``calls``: name -> generation calls, overriding the count read from the creatives file.
    """

    systems: dict[str, str] = named("NAME=PATH", "a creatives file (repeat the flag for more systems)")
    ads: str = field(default="", metadata=_help("catalog with the ads (any format load_catalog reads)"))
    users: str | None = field(default=None, metadata=_help("catalog with the users (default: --ads)"))
    out: str = field(default="runs/eval", metadata=_help("output folder"))
    format: str = field(default="auto", metadata=_help("format of --ads/--users"))
    segments: dict[str, str] = named("NAME=PATH", "user_id,segment_id table for a segment-keyed system "
                                     "('*=PATH' for all)")
    pairs: str | None = field(default=None, metadata=_help("evaluate only these (user_id, ad_id) rows"))
    references: str | None = field(default=None, metadata=_help(
        "reference titles: user_id,ad_id,title rows or an HLLM-Creator parquet"))
    judge: str | None = field(default=None, metadata=_help("'similarity' (MiniLM proxy) or a reward-model folder"))
    judge_margin: float = 0.01
    channels: list[str] = field(default_factory=lambda: ["title", "headline"], metadata=_help(
        "length rules, first is primary: headline, title, name:CHARS[:WORDS]"))
    # a creator.channels.presets preset (google-rsa-headline, ...): made the primary channel of the compliance table
    channel: str | None = field(default=None, metadata=_help(
        "a channel preset made primary: google-rsa-headline, google-rsa-description, meta-headline, "
        "merchant-title or generic"))
    banned_words: list[str] = field(default_factory=list, metadata=_help("words or phrases a title must not use"))
    calls: dict[str, float] = named("NAME=N", "generation calls of a system (override)")
    max_pairs: int | None = field(default=2000, metadata=_help("sample this many pairs (0 or null = all)"))
    bootstrap: int = field(default=1000, metadata=_help("bootstrap resamples"))
    seed: int = 0
    worst_k: int = 5
    # the side-by-side sheet: this many random (original, served) pairs per system, drawn from the users
    # listed in sheet_users (a file, one user id a line: the held-out users) or, without it, every pair's user
    sheet_pairs: int = field(default=30, metadata=_help("side-by-side pairs per system"))
    sheet_users: str | None = field(default=None, metadata=_help("draw them from these user ids (file, one a line)"))
    group_by: str = field(default="category", metadata=_help("category or brand"))
    encoder: str = "minilm"
    cache_dir: str | None = field(default=None, metadata=_help("embedding cache folder"))
    # fluency per system (creator.modeling.fluency): reference LM (auto, gemma-270m or an LM folder); None: off
    fluency: str | None = field(default=None, metadata=_help(
        "measure fluency under this reference LM: auto, gemma-270m or an LM folder (docs/fluency.md)"))
    fluency_percentile: float = field(default=95.0, metadata=_help(
        "the gate's threshold: this percentile of the catalog titles' NLL"))
    fluency_normalize: str = field(default="unigram", metadata=_help(
        "the gate's statistic: NLL in excess of the catalog's word frequencies (unigram) or the raw NLL (none)"))

    def __post_init__(self) -> None:
        self.systems = parse_named(self.systems, "--systems")
        self.segments = parse_named(self.segments, "--segments")
        self.calls = parse_named(self.calls, "--calls", number=True)
        if self.max_pairs == 0:
            self.max_pairs = None  # --max-pairs 0: every pair
        self._check_systems()
        if self.channel is not None:
            from creator.channels.presets import get_channel

            self.channel = get_channel(self.channel).name
            self.channels = [self.channel, *(c for c in self.channels if c != self.channel)]
        for spec in self.channels:
            parse_channel(spec)  # raises with the fix
        self._check_numbers()

    def _check_systems(self) -> None:
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

    def _check_numbers(self) -> None:
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
        """The resolved config as YAML that ``--config`` reads back (``creator.config.save_resolved``)."""
        from creator.config import save_resolved

        return save_resolved(path, self)

