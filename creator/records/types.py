"""Records that flow through hllm-creator: ads, users, interactions, impressions, creatives.

Every record is a plain dataclass with ``to_dict`` / ``from_dict`` so it round-trips through
JSONL, CSV and Parquet (see ``creator.io.records``). ``from_dict`` validates types and raises
``DataError`` with the field name, so a bad row never becomes a half-built object.

    >>> ad = Ad(ad_id="7", title="BIC Round Stic Pen, Black, 10-Count", brand="BIC")
    >>> Ad.from_dict(ad.to_dict()) == ad
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from creator.records.errors import DataError

# shortened / withheld: under a platform channel, a short title of the ad's own words / no compliant title
CreativeSource = Literal["personalized", "original", "fallback", "shortened", "withheld"]
FactKind = Literal["quantity", "model_number", "brand", "count", "size"]


def _check(cls_name: str, name: str, value: Any, expected: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, expected) or isinstance(value, bool) and expected in (int, float, (int, float)):
        raise DataError(
            f"{cls_name}.{name} must be {what}",
            field=name,
            expected=what,
            got=f"{type(value).__name__} {value!r:.80}",
            fix=f"write {name} as {what}",
        )


def _str_list(cls_name: str, name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataError(
            f"{cls_name}.{name} must be a list of strings",
            field=name,
            expected="a list of strings",
            got=f"{type(value).__name__} {value!r:.80}",
            fix=f'write {name} as a JSON list, e.g. ["a", "b"]',
        )
    return list(value)


@dataclass(frozen=True)
class Fact:
    """A hard attribute of an ad that generated text may repeat but never contradict or invent.

    ``norm`` is the comparison key (lower-case, units canonicalised: ``"200 page"``, ``"cb335wn"``).
    """

    kind: FactKind
    text: str
    norm: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fact:
        for name in ("kind", "text", "norm"):
            _check("Fact", name, d.get(name), str, "a string")
        return cls(kind=d["kind"], text=d["text"], norm=d["norm"])


@dataclass
class Ad:
    """An ad (or catalog item): the text a personalized title must stay true to."""

    ad_id: str
    title: str
    description: str = ""
    brand: str = ""
    category: str = ""
    selling_points: list[str] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    REQUIRED: ClassVar[tuple[str, ...]] = ("ad_id", "title")

    def __post_init__(self) -> None:
        if not self.title or not self.title.strip():
            raise DataError(
                "ad title is empty",
                field="title",
                expected="a non-empty title",
                got=repr(self.title),
                fix="give every ad a title or drop the row",
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["facts"] = [f.to_dict() for f in self.facts]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ad:
        _require(cls, d)
        ad_id = d["ad_id"]
        if isinstance(ad_id, int) and not isinstance(ad_id, bool):
            ad_id = str(ad_id)
        _check("Ad", "ad_id", ad_id, str, "a string id")
        _check("Ad", "title", d["title"], str, "a string")
        for name in ("description", "brand", "category"):
            if d.get(name) is not None:
                _check("Ad", name, d[name], str, "a string")
        facts = d.get("facts") or []
        if not isinstance(facts, list):
            raise DataError("Ad.facts must be a list", field="facts", expected="a list of facts",
                            got=type(facts).__name__, fix="write facts as a JSON list or leave it out")
        return cls(
            ad_id=ad_id,
            title=d["title"],
            description=d.get("description") or "",
            brand=d.get("brand") or "",
            category=d.get("category") or "",
            selling_points=_str_list("Ad", "selling_points", d.get("selling_points")),
            facts=[f if isinstance(f, Fact) else Fact.from_dict(f) for f in facts],
        )


@dataclass
class HistoryItem:
    """One item a user interacted with (clicked, bought, reviewed), oldest first in ``User.history``."""

    item_id: str
    title: str
    timestamp: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryItem:
        if not isinstance(d, dict):
            raise DataError("history entries must be objects", field="history",
                            expected='{"item_id": ..., "title": ...}', got=f"{type(d).__name__} {d!r:.60}",
                            fix="write each history entry as an object with item_id and title")
        item_id = d.get("item_id")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        _check("HistoryItem", "item_id", item_id, str, "a string id")
        _check("HistoryItem", "title", d.get("title"), str, "a string")
        ts = d.get("timestamp")
        if ts is not None:
            _check("HistoryItem", "timestamp", ts, (int, float), "a number (unix seconds)")
        return cls(item_id=item_id, title=d["title"], timestamp=None if ts is None else float(ts))


@dataclass
class User:
    """A user: an ordered history (oldest first) and an optional profile written by the CoT pipeline."""

    user_id: str
    history: list[HistoryItem] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("user_id",)

    @property
    def history_titles(self) -> list[str]:
        return [h.title for h in self.history]

    def recent(self, n: int) -> list[HistoryItem]:
        """The last ``n`` history items, oldest first."""
        return self.history[-n:] if n > 0 else []

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "history": [h.to_dict() for h in self.history], "profile": self.profile}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> User:
        _require(cls, d)
        user_id = d["user_id"]
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        _check("User", "user_id", user_id, str, "a string id")
        history = d.get("history") or []
        if not isinstance(history, list):
            raise DataError("User.history must be a list", field="history", expected="a list of history items",
                            got=f"{type(history).__name__} {history!r:.60}",
                            fix='write history as [{"item_id": "1", "title": "..."}, ...]')
        profile = d.get("profile")
        if profile is not None and not isinstance(profile, dict):
            raise DataError("User.profile must be an object", field="profile", expected="a JSON object or null",
                            got=type(profile).__name__, fix="write the profile as a JSON object or leave it out")
        return cls(user_id=user_id, history=[HistoryItem.from_dict(h) for h in history], profile=profile)


@dataclass
class Interaction:
    """A positive event from a history log: ``user_id`` took ``ad_id`` (at position ``position``)."""

    user_id: str
    ad_id: str
    timestamp: float | None = None
    position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interaction:
        _require(cls, d, ("user_id", "ad_id"))
        return cls(user_id=str(d["user_id"]), ad_id=str(d["ad_id"]), timestamp=d.get("timestamp"),
                   position=d.get("position"))


@dataclass
class Impression:
    """An ad shown to a user, with its click label (MIND-style impression logs)."""

    user_id: str
    ad_id: str
    clicked: bool
    timestamp: float | None = None
    impression_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Impression:
        _require(cls, d, ("user_id", "ad_id", "clicked"))
        clicked = d["clicked"]
        if clicked in (0, 1, "0", "1", "true", "false", "True", "False"):
            clicked = str(clicked).lower() in ("1", "true")
        _check("Impression", "clicked", clicked, bool, "true/false or 0/1")
        return cls(user_id=str(d["user_id"]), ad_id=str(d["ad_id"]), clicked=clicked,
                   timestamp=d.get("timestamp"), impression_id=d.get("impression_id"))


@dataclass(frozen=True)
class GuardFailure:
    """One reason a title was rejected: the rule, the offending span and a sentence a person can act on."""

    rule: str
    span: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GuardVerdict:
    """The fact check and hard constraints applied to one title; ``passed`` iff no failures."""

    failures: list[GuardFailure] = field(default_factory=list)
    checker: str = "rules"
    # measured scores behind score-based rules, e.g. {"fluency_nll": 3.1} from the fluency gate; empty otherwise
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        d = {"passed": self.passed, "checker": self.checker, "failures": [f.to_dict() for f in self.failures]}
        return {**d, "scores": dict(self.scores)} if self.scores else d  # no key without a scored rule

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GuardVerdict:
        return cls(failures=[GuardFailure(**f) for f in d.get("failures", [])], checker=d.get("checker", "rules"),
                   scores={k: float(v) for k, v in (d.get("scores") or {}).items() if v is not None})


@dataclass
class Creative:
    """A title served for one ad to one audience segment (``segment_id``) or one user (``user_id``)."""

    ad_id: str
    title: str
    source: CreativeSource
    segment_id: int | None = None
    user_id: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    verdict: GuardVerdict | None = None
    selling_points_used: list[str] = field(default_factory=list)

    SOURCES: ClassVar[tuple[str, ...]] = ("personalized", "original", "fallback", "shortened", "withheld")

    def __post_init__(self) -> None:
        if self.source not in self.SOURCES:
            raise DataError("unknown creative source", field="source", expected=" | ".join(self.SOURCES),
                            got=repr(self.source),
                            fix="use personalized, original or fallback (under a channel also shortened or withheld)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.to_dict() if self.verdict else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Creative:
        _require(cls, d, ("ad_id", "title", "source"))
        verdict = d.get("verdict")
        seg = d.get("segment_id")
        return cls(
            ad_id=str(d["ad_id"]),
            title=d["title"],
            source=d["source"],
            segment_id=None if seg is None else int(seg),
            user_id=None if d.get("user_id") is None else str(d["user_id"]),
            scores={k: float(v) for k, v in (d.get("scores") or {}).items()},
            verdict=GuardVerdict.from_dict(verdict) if isinstance(verdict, dict) else None,
            selling_points_used=_str_list("Creative", "selling_points_used", d.get("selling_points_used")),
        )


def _require(cls: type, d: Any, names: tuple[str, ...] | None = None) -> None:
    if not isinstance(d, dict):
        raise DataError(f"a {cls.__name__} row must be an object", expected="a JSON object",
                        got=f"{type(d).__name__} {d!r:.60}", fix="write one JSON object per line")
    for name in names or cls.REQUIRED:
        if d.get(name) is None or d.get(name) == "":
            raise DataError(
                f"{cls.__name__} row is missing required field {name!r} (or it is empty)",
                field=name,
                expected=f"fields {', '.join(f.name for f in fields(cls))}",
                got=f"keys {sorted(d)}",
                fix=f"add {name} to every row",
            )
