"""The demo's adapter to the library: one marketer's loaded catalog, chosen ad, segments and locks.

Everything model-shaped goes through ``creator.pipeline.catalog.generate_for_catalog`` with the trained parts
a ``PartsSource`` hands over (``app.demo_artifacts.ArtifactParts`` in the app); this module only keeps
state and turns results into rows a person can read. It never writes or edits a title itself.

* **Generate** runs the pipeline on the chosen ad and every user: K segments, match pruning, guarded
  candidates, the judge's pick, the original title where the pair was pruned or nothing passed.
* **Regenerate** one segment (or every unlocked one) re-runs the same pipeline on that segment's users
  alone as one cluster (its mean user vector, as a centroid segment is) with a fresh sampling seed,
  so the segments stay put while the title changes.
* **Lock** keeps a segment's title through regenerations and through Generate while the segments are
  unchanged (same ad, catalog and K) and the channel is the same (a title locked for one channel may break
  another's rules).
* The channel (``Constraints.channel``) sets the guard, the fallback and the decoding budget; each row shows
  its title's length as the channel counts it against the limit ("26/30"). For the Google Ads channels the
  rows also export as a Google Ads Editor CSV (``creator.io.google_ads``).
* The judge column is the mean click probability the judge gives the served title and the original
  title over (up to ``JUDGE_USERS``) members of the segment.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from app.demo_describe import history_word_counts, points_echoed, segment_persona
from creator.guard.check import GuardConfig
from creator.io import Catalog
from creator.records.types import Ad, Creative, User

logger = logging.getLogger(__name__)

JUDGE_USERS = 64
COLUMNS = ["segment", "users", "persona", "title", "chars", "channel", "source", "locked", "judge", "original_judge",
           "lift", "fact_check", "fluency", "selling_points_used"]


class PartsSource(Protocol):
    """Where the trained parts come from: ``components`` returns ``creator.pipeline.catalog.Components``."""

    description: str

    def components(self, guard: GuardConfig, known_brands: list[str], ads: Sequence[Ad] = ()) -> Any: ...


@dataclass
class Constraints:
    """What a marketer can set. ``match_threshold`` 0 keeps every (segment, ad) pair."""

    max_chars: int = 120
    banned_words: list[str] = field(default_factory=list)
    clusters: int = 6
    match_threshold: float = 0.0
    candidates: int = 4
    channel: str = "generic"  # a creator.channels.presets preset; its max_chars caps max_chars and its rules apply

    def __post_init__(self) -> None:
        from creator.channels.presets import get_channel

        self.channel = get_channel(self.channel).name
        self.banned_words = [w.strip() for w in self.banned_words if w and w.strip()]
        if not 10 <= self.max_chars <= 300:
            raise ValueError(f"max length must be between 10 and 300 characters, got {self.max_chars}")
        if not 1 <= self.clusters <= 64:
            raise ValueError(f"clusters K must be between 1 and 64, got {self.clusters}")
        if not 0.0 <= self.match_threshold <= 1.0:
            raise ValueError("the match threshold is a probability between 0 and 1, "
                             f"got {self.match_threshold}")
        if not 1 <= self.candidates <= 16:
            raise ValueError(f"candidates per segment must be between 1 and 16, got {self.candidates}")

    @classmethod
    def from_form(cls, max_chars: Any, banned: str | None, clusters: Any, threshold: Any,
                  candidates: Any = 4, channel: str | None = None) -> Constraints:
        """From the UI's raw values: banned words comma- or newline-separated."""
        words = [w for part in (banned or "").split("\n") for w in part.split(",")]
        return cls(int(max_chars), words, int(clusters), float(threshold or 0.0), int(candidates),
                   channel or "generic")

    @property
    def limit(self) -> int:
        """The length limit titles are held to: the slider, capped by the channel's own limit."""
        from creator.channels.presets import get_channel

        return min(self.max_chars, get_channel(self.channel).max_chars) if self.channel != "generic" \
            else self.max_chars

    def guard(self) -> GuardConfig:
        from creator.channels.presets import get_channel

        return GuardConfig.for_channel(get_channel(self.channel), max_chars=self.limit,
                                       banned_words=list(self.banned_words))

    def pipeline(self, clusters: int) -> Any:
        from creator.pipeline.catalog import PipelineConfig

        return PipelineConfig(clusters=clusters, match_threshold=self.match_threshold or None, channel=self.channel)


@dataclass
class SegmentRow:
    segment: int
    users: int
    persona: str
    creative: Creative
    judge: float | None
    original_judge: float | None
    locked: bool = False
    channel: str = "generic"
    limit: int = 120
    alternates: list[str] = field(default_factory=list)  # the pair's other candidates that passed the guard
    fluency_limit: float | None = None  # the fluency gate's threshold (None: no gate)

    def fact_check(self) -> str:
        c = self.creative
        if c.source == "original":
            return f"pruned (match {c.scores.get('match', 0.0):.2f} below threshold): original title served"
        if c.source == "personalized":
            return "passed"
        why = "; ".join(f"{f.rule}: {f.reason}" for f in c.verdict.failures) if c.verdict else ""
        return f"no candidate passed ({why or 'no candidate'}): {_SERVED[c.source]}"

    def fact_check_summary(self) -> str:
        """The verdict in a few words for the on-screen table: the rules that failed, not every reason."""
        c = self.creative
        if c.source == "personalized":
            return "passed"
        if c.source == "original":
            return f"pruned (match {c.scores.get('match', 0.0):.2f})"
        rules = sorted({f.rule for f in c.verdict.failures}) if c.verdict else []
        return f"failed: {', '.join(rules) or 'no candidate'}; {_SERVED_SHORT[c.source]}"

    def fluency(self) -> str:
        """The fluency gate's verdict on the served title: its excess NLL against the gate's limit (lower reads
        better; docs/fluency.md); "-" without a gate; the original title is the calibration reference, not gated."""
        c = self.creative
        if self.fluency_limit is None:
            return "-"
        if c.source != "personalized":
            disfluent = c.verdict is not None and any(f.rule == "disfluent" for f in c.verdict.failures)
            return "candidates did not read as text" if disfluent else "original title (not gated)"
        scores = c.verdict.scores if c.verdict else {}
        value = scores.get("fluency_excess_nll", scores.get("fluency_nll"))
        if value is None:
            return "-"
        return f"reads as text ({value:+.2f} <= {self.fluency_limit:+.2f})"

    def chars(self) -> str:
        """The served title's length as the channel counts it, against the limit: "26/30"."""
        from creator.channels.presets import get_channel

        return f"{get_channel(self.channel).width(self.creative.title)}/{self.limit}"

    def to_dict(self) -> dict[str, Any]:
        c = self.creative
        lift = None if self.judge is None or self.original_judge is None else self.judge - self.original_judge
        return {"segment": self.segment, "users": self.users, "persona": self.persona, "title": c.title,
                "chars": self.chars(), "channel": self.channel, "source": c.source,
                "locked": "yes" if self.locked else "",
                "judge": _round(self.judge), "original_judge": _round(self.original_judge),
                "lift": _round(lift),
                "fact_check": self.fact_check(), "fluency": self.fluency(),
                "selling_points_used": " | ".join(c.selling_points_used),
                "fact_check_summary": self.fact_check_summary()}


# what a row serves when no candidate passed, by creative source
_SERVED = {"fallback": "original title served", "original": "original title served",
           "shortened": "shortened title of the ad's words served",
           "withheld": "nothing served (no title of the ad complies with the channel)"}
_SERVED_SHORT = {"fallback": "original served", "original": "original served", "shortened": "shortened title served",
                 "withheld": "nothing served"}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


class DemoSession:
    """State of one browser tab. Methods raise ``ValueError``/``DataError`` with readable messages."""

    def __init__(self, parts: PartsSource, seed: int = 0) -> None:
        self.parts = parts
        self.seed = seed
        self.catalog: Catalog | None = None
        self.catalog_name = ""
        self.users: list[User] = []
        self.word_counts: Counter = Counter()
        self.ad: Ad | None = None
        self.constraints = Constraints()
        self.rows: dict[int, SegmentRow] = {}
        self.labels: dict[str, int] = {}
        self.layout_key: tuple | None = None
        self.attempts: dict[int, int] = {}
        self._vectors: np.ndarray | None = None
        self.guard: Any = None
        self.unlocked: list[int] = []  # locks the last Generate released because the channel changed

    # -- catalog and ad --------------------------------------------------------------------------
    def load(self, catalog: Catalog, name: str) -> None:
        if not catalog.ads or not catalog.users:
            raise ValueError(f"{name} has {len(catalog.ads)} ads and {len(catalog.users)} users; "
                             "the demo needs both: load an ads file and a users file together")
        self.catalog, self.catalog_name = catalog, name
        self.users = list(catalog.users.values())
        self.word_counts = history_word_counts(self.users)
        self.ad, self.rows, self.labels, self.layout_key, self._vectors = None, {}, {}, None, None

    def ad_choices(self) -> list[tuple[str, str]]:
        ads = self.catalog.ads.values() if self.catalog else []
        return [(f"{a.title[:90]} [{a.ad_id}]", a.ad_id) for a in ads]

    def pick(self, ad_id: str) -> Ad:
        if self.catalog is None:
            raise ValueError("load a catalog first (the bundled sample or your own files)")
        if ad_id not in self.catalog.ads:
            raise ValueError(f"ad {ad_id!r} is not in {self.catalog_name}; pick one from the list")
        if self.ad is None or self.ad.ad_id != ad_id:
            self.ad, self.rows, self.layout_key = self.catalog.ads[ad_id], {}, None
        return self.ad

    # -- generation ------------------------------------------------------------------------------
    def generate(self, constraints: Constraints) -> None:
        """Segments and titles for the chosen ad and every user; locked rows survive if segments did."""
        from creator.backends.base import SamplingConfig
        from creator.pipeline.catalog import generate_for_catalog

        ad = self._need_ad()
        self.constraints = constraints
        parts = self._components()
        result = generate_for_catalog([ad], self.users, parts, constraints.pipeline(constraints.clusters),
                                      SamplingConfig(n=constraints.candidates, seed=self.seed))
        key = (self.catalog_name, ad.ad_id, constraints.clusters)
        locked = {s: r for s, r in self.rows.items() if r.locked} if key == self.layout_key else {}
        # a title locked under another channel may break this one's rules: it is regenerated (and said so)
        keep = {s: r for s, r in locked.items() if r.channel == constraints.channel}
        self.unlocked = sorted(set(locked) - set(keep))
        self.labels, self.layout_key, self.attempts = dict(result.user_segments), key, {}
        self.rows = {}
        for c in result.creatives:
            self.rows[c.segment_id] = keep.get(c.segment_id) or self._row(
                c, parts, result.alternates.get((c.segment_id, c.ad_id), []))

    def regenerate(self, constraints: Constraints, segment: int | None = None) -> list[int]:
        """New titles for ``segment`` (or every unlocked segment); returns the segments redone."""
        from creator.backends.base import SamplingConfig
        from creator.pipeline.catalog import generate_for_catalog

        ad = self._need_ad()
        if not self.rows:
            raise ValueError("press Generate first: there are no segments to regenerate yet")
        if segment is not None and segment not in self.rows:
            raise ValueError(f"there is no segment {segment}; pick one of {sorted(self.rows)}")
        if segment is not None and self.rows[segment].locked:
            raise ValueError(f"segment {segment} is locked; unlock it to regenerate its title")
        todo = [segment] if segment is not None else [s for s, r in sorted(self.rows.items()) if not r.locked]
        self.constraints = constraints
        parts = self._components()
        for s in todo:
            members = self.members(s)
            self.attempts[s] = self.attempts.get(s, 0) + 1
            sampling = SamplingConfig(n=constraints.candidates, seed=self.seed + 1000 * self.attempts[s] + s)
            result = generate_for_catalog([ad], members, parts, constraints.pipeline(1), sampling)
            creative = result.creatives[0]
            alternates = result.alternates.get((creative.segment_id, creative.ad_id), [])
            creative.segment_id = s
            self.rows[s] = self._row(creative, parts, alternates)
        return todo

    def lock(self, segment: int, locked: bool = True) -> None:
        if segment not in self.rows:
            raise ValueError(f"there is no segment {segment}; "
                             f"generate first, then pick one of {sorted(self.rows)}")
        self.rows[segment].locked = locked

    def members(self, segment: int) -> list[User]:
        return [u for u in self.users if self.labels.get(u.user_id) == segment]

    def _need_ad(self) -> Ad:
        if self.catalog is None:
            raise ValueError("load a catalog first (the bundled sample or your own files)")
        if self.ad is None:
            raise ValueError("pick an ad first")
        return self.ad

    def _components(self) -> Any:
        from creator.guard.check import known_brands_from_ads

        brands = known_brands_from_ads(self.catalog.ads.values())
        parts = self.parts.components(self.constraints.guard(), brands, list(self.catalog.ads.values()))
        self.guard = parts.guard  # the guard the rows were served under: the Google Ads export reuses it
        return parts

    def _row(self, creative: Creative, parts: Any, alternates: list[str] | None = None) -> SegmentRow:
        ad, members = self.ad, self.members(creative.segment_id)
        if not creative.selling_points_used and creative.source == "personalized":
            creative.selling_points_used = points_echoed(creative.title, ad)
        judge, original = self._judge(parts, members, creative.title, ad)
        persona = segment_persona(members, self.word_counts)
        gate = getattr(parts.guard, "fluency", None)
        return SegmentRow(creative.segment_id, len(members), persona, creative, judge, original,
                          channel=self.constraints.channel, limit=self.constraints.limit,
                          alternates=list(alternates or []), fluency_limit=gate.threshold if gate else None)

    @staticmethod
    def _judge(parts: Any, members: list[User], title: str, ad: Ad) -> tuple[float | None, float | None]:
        if parts.judge is None or not members:
            return None, None
        step = max(1, len(members) // JUDGE_USERS)
        sample = members[::step][:JUDGE_USERS]
        n = len(sample)
        got = np.asarray(parts.judge.score(sample + sample, [title] * n + [ad.title] * n, [ad] * (2 * n)))
        return float(got[:n].mean()), float(got[n:].mean())

    # -- views -----------------------------------------------------------------------------------
    def table(self) -> list[dict[str, Any]]:
        return [self.rows[s].to_dict() for s in sorted(self.rows)]

    def export_csv(self, path: str | Path) -> Path:
        import csv

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ad = self._need_ad()
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["ad_id", "original_title", *COLUMNS], extrasaction="ignore")
            writer.writeheader()
            for row in self.table():
                writer.writerow({"ad_id": ad.ad_id, "original_title": ad.title, **row})
        return path

    def export_google_ads(self, path: str | Path) -> Any | None:
        """The rows as a Google Ads Editor CSV (``creator.io.google_ads.GoogleAdsExport``) when the rows were
        generated for a Google Ads channel; None otherwise. Rows short of 3 headlines / 2 descriptions are
        written and counted in the result."""
        from creator.channels.presets import get_channel
        from creator.io.google_ads import write_google_ads_csv

        ad = self._need_ad()
        channels = {r.channel for r in self.rows.values()}
        if len(channels) != 1 or get_channel(next(iter(channels))).export is None or self.guard is None:
            return None
        rows = [self.rows[s] for s in sorted(self.rows)]
        if self.guard.config.channel != rows[0].channel:
            return None
        return write_google_ads_csv([r.creative for r in rows], path, channel=rows[0].channel, ads={ad.ad_id: ad},
                                    guard=self.guard, alternates={(r.segment, ad.ad_id): r.alternates for r in rows})

    def projection(self) -> tuple[np.ndarray, np.ndarray]:
        """Users' vectors from the user model projected on their first two principal axes, and their segments.

        Returns ``(xy (N, 2), labels (N,))``; the vectors are computed once per catalog.
        """
        if not self.labels:
            raise ValueError("press Generate first: the map shows the segments it found")
        if self._vectors is None:
            vecs = self._components().user_model.embed_users(self.users)
            self._vectors = np.asarray(vecs, dtype=np.float64)  # (N, d)
        centred = self._vectors - self._vectors.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)  # rows of vt: principal axes
        xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, np.zeros(len(centred))]
        labels = np.array([self.labels.get(u.user_id, -1) for u in self.users])
        return xy, labels
