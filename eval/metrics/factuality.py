"""Factuality: the share of titles that state something the ad does not support, with the offending span.

It runs the serving guard (``creator.guard.check.Guard``, the same code that screens every title before
it is shown) and counts only its *fact* rules: an ungrounded number, a changed unit, an invented
model number, a wrong brand or an ungrounded claim. Length and wording rules belong to
``Compliance``. Any object with ``.check(title, ad, *, original_title=None) -> GuardVerdict`` can
stand in for the guard, so a model-based fact checker (``Guard(fact_checker=...)``) plugs in the same way.

    >>> from creator.records.types import Ad, GuardFailure, GuardVerdict
    >>> class TenCountOnly:       # a stand-in checker: any "12" is ungrounded
    ...     def check(self, title, ad, *, original_title=None):
    ...         bad = [GuardFailure("ungrounded_number", "12", "ad says 10")] if "12" in title else []
    ...         return GuardVerdict(bad, checker="toy")
    >>> ad = Ad(ad_id="1", title="BIC Pens, 10-Count")
    >>> r = Factuality(TenCountOnly())(["BIC Pens, 10-Count", "BIC Pens, 12-Count"], [ad, ad])
    >>> r.rate, r.by_rule, r.items[1].spans
    (0.5, {'ungrounded_number': 1}, ['12'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from creator.records.types import Ad, GuardFailure, GuardVerdict

FACT_RULES: tuple[str, ...] = (
    "ungrounded_number",
    "changed_unit",
    "ungrounded_model_number",
    "wrong_brand",
    "ungrounded_claim",
    "off_topic",
)


class TitleChecker(Protocol):
    """What ``creator.guard.check.Guard`` offers: one verdict per (title, ad)."""

    def check(self, title: str, ad: Ad, *, original_title: str | None = None) -> GuardVerdict: ...


def default_guard(ads: Sequence[Ad] = (), **config: Any) -> TitleChecker:
    """The serving guard with ``config`` (GuardConfig fields), knowing the brands of ``ads`` (the catalog)
    so that naming another catalog brand counts as ``wrong_brand``."""
    try:
        from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
    except ImportError as exc:  # the guard ships with the CoT issue; say so instead of a bare traceback
        raise RuntimeError(
            "factuality and compliance need creator.guard.check (the serving guard), which is not "
            "importable here; install the full package or pass a checker explicitly"
        ) from exc
    return Guard(GuardConfig(**config), known_brands=known_brands_from_ads(ads))


@dataclass
class TitleFacts:
    """One title's fact failures (empty when it is grounded)."""

    failures: list[GuardFailure] = field(default_factory=list)

    @property
    def ungrounded(self) -> bool:
        return bool(self.failures)

    @property
    def spans(self) -> list[str]:
        return [f.span for f in self.failures]

    def to_dict(self) -> dict[str, Any]:
        return {"ungrounded": self.ungrounded, "failures": [f.to_dict() for f in self.failures]}


@dataclass
class FactualityResult:
    """``rate`` = share of titles with at least one fact failure; ``by_rule`` counts titles per rule."""

    items: list[TitleFacts]
    by_rule: dict[str, int]
    checker: str

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def flags(self) -> np.ndarray:
        """(N,) float 0/1 per title: 1 where it is ungrounded (ready for ``bootstrap_ci``)."""
        return np.array([float(i.ungrounded) for i in self.items])

    @property
    def rate(self) -> float:
        return float(self.flags.mean()) if self.items else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "rate": self.rate, "by_rule": self.by_rule, "checker": self.checker}


class Factuality:
    """Share of titles with any ungrounded number, unit, count, model number, brand or claim."""

    name = "factuality"

    def __init__(
        self,
        checker: TitleChecker | None = None,
        rules: Sequence[str] = FACT_RULES,
        *,
        catalog: Sequence[Ad] = (),
    ) -> None:
        # Length limits are compliance's business: open them up so the guard reports facts only.
        self.checker = (
            checker
            if checker is not None
            else default_guard(catalog, max_chars=10**6, check_banned_attributes=False)
        )
        self.rules = frozenset(rules)

    def __call__(
        self, titles: Sequence[str], ads: Sequence[Ad], originals: Sequence[str | None] | None = None
    ) -> FactualityResult:
        if len(titles) != len(ads):
            raise ValueError(f"got {len(titles)} titles but {len(ads)} ads; pass one ad per title")
        originals = originals if originals is not None else [None] * len(titles)
        items: list[TitleFacts] = []
        by_rule: Counter[str] = Counter()
        checker_name = type(self.checker).__name__
        for title, ad, original in zip(titles, ads, originals, strict=True):
            verdict = self.checker.check(title, ad, original_title=original)
            checker_name = verdict.checker or checker_name
            failures = [f for f in verdict.failures if f.rule in self.rules]
            by_rule.update({f.rule for f in failures})
            items.append(TitleFacts(failures))
        return FactualityResult(items, dict(sorted(by_rule.items())), checker_name)
