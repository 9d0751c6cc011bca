"""The offline teacher: deterministic, built on MiniLM embeddings, runs anywhere, never adds a fact.

* **Profile**: the history titles (oldest first) are embedded and grouped greedily by cosine
  similarity; each group's most central title gives a long-term interest (its product-type phrase,
  with digits, brands and personal attributes removed), the last items give short-term interests,
  words shared by several titles give preferences.
* **CoT title**: the user vector is a recency-weighted mean of the history embeddings. The
  profile interest closest to the ad is the "suitable user info"; the ad's selling points are
  ranked by similarity to the user vector; the title is composed from the original title (trimmed
  segment by segment to fit the length budget) and a short hook cut from the best selling point.
  Candidate ``k`` takes the k-th variant (other selling point, hook first, shorter core), so
  preference pairs have real alternatives.

Every word of a title comes from the ad itself (its title and selling points), except in the last
resorts for an ad whose title cannot be reordered and that has no usable selling point: a sanitised
interest phrase from the user's own history ("- for Fans of Gel Pens"), then "- Picked for You".
The teacher checks its own options with the rule-based guard (``creator.guard.check``) and returns the
first that passes, so a number, unit, model number, brand or claim is never added.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from creator.guard.banned_attributes import find_banned_attributes
from creator.guard.check import Guard, GuardConfig
from creator.records.facts import ad_facts
from creator.records.rewrite import TRAIL_DROP as _TRAIL_DROP
from creator.records.rewrite import compose, fit_core, good_hook, hook, length_budget
from creator.records.rewrite import word_list as _words
from creator.records.types import Ad
from data_pipelines.teachers.base import ResultCallback, TeacherRequest, TeacherResult
from data_pipelines.teachers.user_angle import describe, touches, user_profile
from data_pipelines.teachers.user_angle import score as angle_score

_STOP = set(
    """a an and or the of for to in on with by from at as is are be this that these those it its our your
you we they their new set pack count pcs piece pieces each per plus inch inches x ct pk box case oz lb mm cm
assorted various multiple color colors colour colours style size sizes item items type great perfect
ideal""".split()
)
_SEG_SPLIT = re.compile(r"\s*(?:(?<!\d),|,(?!\d)|;|\s[-\u2013\u2014|]\s|\(|\))\s*")


def _clean_phrase(words: list[str], banned_words: set[str]) -> str:
    kept = [
        w
        for w in words
        if not re.search(r"\d", w)
        and w.lower().strip("'") not in banned_words
        and not find_banned_attributes(w)
    ]
    while kept and kept[-1].lower() in _TRAIL_DROP | _STOP:
        kept.pop()
    while kept and kept[0].lower() in _TRAIL_DROP | _STOP:
        kept.pop(0)
    phrase = " ".join(kept[-3:]).lower()
    return "" if find_banned_attributes(phrase) else phrase


class OfflineTeacher:
    """Deterministic teacher on a sentence encoder (``SentenceItemEncoder`` by default).

    ``known_brands``: brand names to keep out of profile phrases (the catalog's brands).
    ``personalize``: ``"profile"`` (the default) picks the selling point, the clause of it and the angle
    from what the user's history keeps coming back to (``user_angle``), MiniLM similarity breaking ties;
    ``"similarity"`` is the earlier teacher (one MiniLM similarity to the user's mean history vector).
    """

    uses_payload = True
    MODES = {"profile": "offline-profile-v3", "similarity": "offline-minilm-v2"}

    def __init__(
        self,
        encoder: Any = None,
        *,
        known_brands: Iterable[str] = (),
        group_threshold: float = 0.55,
        recency_half_life: float = 3.0,
        guard: Guard | None = None,
        personalize: str = "profile",
    ) -> None:
        if personalize not in self.MODES:
            raise ValueError(f"personalize must be one of {sorted(self.MODES)}, got {personalize!r}")
        self.personalize = personalize
        self.name = self.MODES[personalize]  # the cache key: the two modes never share answers
        if encoder is None:
            from creator.modeling.item_encoder import SentenceItemEncoder

            encoder = SentenceItemEncoder()
        self.encoder = encoder
        self.group_threshold = group_threshold
        self.recency_half_life = recency_half_life
        known_brands = list(known_brands)
        self._brand_words = {w.lower() for b in known_brands for w in _words(b) if len(w) > 1}
        self.guard = guard or Guard(GuardConfig(flag_unchanged=True), known_brands=known_brands)
        self._vecs: dict[str, np.ndarray] = {}
        self._hook_cache: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        self._clause_cache: dict[tuple[str, tuple[str, ...]], dict[str, list[str]]] = {}

    # ---- embeddings -------------------------------------------------------------------------
    def _embed(self, texts: Iterable[str]) -> None:
        todo = sorted({t for t in texts if t and t not in self._vecs})
        if todo:
            for t, v in zip(todo, self.encoder.encode(todo), strict=True):
                self._vecs[t] = v

    def _vec(self, text: str) -> np.ndarray:
        if text not in self._vecs:  # rare: texts not prefetched by ``_texts`` (fallback options)
            self._embed([text])
        return self._vecs[text]

    def user_vector(self, history: list[str]) -> np.ndarray:
        """Recency-weighted mean of the history embeddings (newest weighs most), L2-normalised."""
        n = len(history)
        w = 0.5 ** (np.arange(n)[::-1] / self.recency_half_life)  # (n,)
        v = (w[:, None] * np.stack([self._vec(t) for t in history])).sum(0)  # (D,)
        return v / (np.linalg.norm(v) + 1e-8)

    # ---- profile ----------------------------------------------------------------------------
    def _phrase(self, title: str, extra_banned: Iterable[str] = ()) -> str:
        head = _SEG_SPLIT.split(title, maxsplit=1)[0]
        return _clean_phrase(_words(head), self._brand_words | {w.lower() for w in extra_banned})

    def profile(self, history: list[str], history_brands: list[str] | None = None) -> dict[str, Any]:
        brands = [w for b in (history_brands or []) for w in _words(b)]
        if not history:
            return {
                "long_term_interests": [],
                "short_term_interests": [],
                "preferences": [],
                "needs": [],
                "description": "No history yet.",
            }
        vecs = np.stack([self._vec(t) for t in history])  # (n, D)
        groups: list[list[int]] = []
        for i, v in enumerate(vecs):
            sims = [float(vecs[g].mean(0) @ v) for g in groups]
            if sims and max(sims) >= self.group_threshold:
                groups[int(np.argmax(sims))].append(i)
            else:
                groups.append([i])
        groups.sort(key=lambda g: (-len(g), -max(g)))  # biggest, then most recent
        long_term: list[str] = []
        for g in groups:
            centre = vecs[g].mean(0)
            medoid = g[int(np.argmax(vecs[g] @ centre))]
            phrase = self._phrase(history[medoid], brands)
            if phrase and phrase not in long_term:
                long_term.append(phrase)
        short_term = []
        for t in reversed(history[-3:]):
            phrase = self._phrase(t, brands)
            if phrase and phrase not in short_term:
                short_term.append(phrase)
        # dict.fromkeys, not set: a set's order changes with each process's string hashing, and the order
        # decides how most_common breaks ties, so the profile (and everything trained on it) would too
        counts = Counter(w.lower() for t in history for w in dict.fromkeys(_words(t)))
        banned = (
            self._brand_words | {w.lower() for w in brands} | set(" ".join(long_term + short_term).split())
        )
        prefs = [
            w
            for w, c in counts.most_common()
            if c >= 2
            and len(w) > 3
            and w not in _STOP
            and w not in banned
            and not re.search(r"\d", w)
            and not find_banned_attributes(w)
        ][:3]
        needs = [f"restocking {p}" for p in long_term[:1]] + [
            f"items that go with {p}" for p in short_term[:1]
        ]
        description = "Shops mostly for " + (" and ".join(long_term[:2]) or "assorted products")
        if short_term:
            description += f"; most recently interested in {short_term[0]}"
        if prefs:
            description += f"; repeatedly picks {', '.join(prefs)} items"
        return {
            "long_term_interests": long_term[:4],
            "short_term_interests": short_term[:2],
            "preferences": prefs,
            "needs": needs,
            "description": description + ".",
        }

    # ---- CoT title --------------------------------------------------------------------------
    # the rule-based edits live in creator.records.rewrite (pretrain-lm uses them too)
    hook = staticmethod(hook)
    good_hook = staticmethod(good_hook)
    fit_core = staticmethod(fit_core)

    def compose(self, title: str, lead: str, budget: int, *, hook_first: bool = False, joiner: str = " - ") -> str:
        return compose(title, lead, budget, hook_first=hook_first, joiner=joiner)

    def cot_title(self, payload: dict[str, Any]) -> dict[str, Any]:
        ad = payload["ad"]
        title = ad["title"].strip()
        history = payload.get("history") or []
        profile = payload.get("profile") or {}
        k = int(payload.get("candidate", 0))
        budget = length_budget(title, int(payload.get("max_chars", 120)), payload.get("max_added_chars"))
        u = self.user_vector(history) if history else self._vec(title)
        interests = [
            (kind, p)
            for kind, key in (("long-term", "long_term_interests"), ("short-term", "short_term_interests"))
            for p in profile.get(key, [])
        ]
        suitable = ""
        if interests:
            sims = [float(self._vec(p) @ self._vec(title)) for _, p in interests]
            best = int(np.argmax(sims))
            if sims[best] >= 0.3:
                suitable = f"{interests[best][0]} interest in {interests[best][1]}"
        hooks = self._hooks(ad)
        lead_first: int | None = None  # a title segment to lead with, when it speaks to the user best
        hook_first_pref = False
        segments = [s for s in _SEG_SPLIT.split(title) if s.strip()]
        if self.personalize == "profile" and history:
            hooks, ranked, lead_first, hook_first_pref, why = self._profile_choice(ad, history, u, segments)
            suitable = "; ".join(x for x in (suitable, why) if x)
        else:
            # (N,) similarity of each hook to the user; the hook is what the title will say
            ranked = sorted(hooks, key=lambda p: -float(self._vec(hooks[p]) @ u))

        def options() -> Iterator[tuple[str, list[str]]]:  # (title, selling points used), preferred first
            if lead_first is not None and k == 0:
                lead = segments[lead_first]
                rest = ", ".join(s for s in segments if s != lead)
                yield self.compose(rest, lead, budget, hook_first=True), []
            if ranked:
                variants = [(0, hook_first_pref), (1, False), (0, not hook_first_pref), (2, False)]
                for j, hook_first in variants[k % 4 :] + variants[: k % 4]:
                    point = ranked[min(j, len(ranked) - 1)]
                    yield self.compose(title, hooks[point], budget, hook_first=hook_first), [point]
            # lead with a title segment closest to the user (never the first one): reorders, adds nothing
            leads = sorted(
                (i for i in range(1, len(segments)) if re.search(r"[A-Za-z]{3}", segments[i])),
                key=lambda i: -float(self._vec(segments[i]) @ u),
            )
            for j in range(len(leads)):
                lead = segments[leads[(k + j) % len(leads)]]
                rest = ", ".join(s for s in segments if s != lead)
                yield self.compose(rest, lead, budget, hook_first=True), []
            phrases = [p for _, p in interests]
            for j in range(len(phrases)):
                yield (
                    self.compose(title, "for Fans of " + phrases[(k + j) % len(phrases)].title(), budget),
                    [],
                )
            yield self.compose(title, "Picked for You", budget), []

        text, used = self._first_passing(options(), ad)
        return {"suitable_user_info": suitable, "selling_points": used, "title": " ".join(text.split())}

    def _first_passing(
        self, options: list[tuple[str, list[str]]], ad: dict[str, Any]
    ) -> tuple[str, list[str]]:
        """The first option the rule-based guard passes (the teacher checks its own work), else the first."""
        view = Ad(
            ad_id=str(ad.get("ad_id", "")),
            title=ad["title"],
            brand=ad.get("brand") or "",
            selling_points=list(ad.get("selling_points", [])),
        )
        view.facts = ad_facts(view)
        first: tuple[str, list[str]] | None = None
        for text, used in options:
            text = " ".join(text.split())
            first = first or (text, used)
            if self.guard.check(text, view).passed:
                return text, used
        assert first is not None, "options always end with the fact-free last resort"
        return first

    def _profile_choice(
        self, ad: dict[str, Any], history: list[str], u: np.ndarray, segments: list[str]
    ) -> tuple[dict[str, str], list[str], int | None, bool, str]:
        """(point -> hook, points best first, title segment to lead with or None, hook first?, why).

        Each point's hook is the clause of it that speaks most to the user's recurring words and angles;
        points rank by that score, then by MiniLM similarity to the user (``sim_weight``). A title segment
        (never the first) leads when it speaks to the profile more than every hook. The hook goes first
        when it touches the user's strongest angle (the angle decides the title's opening).
        """
        prof = user_profile(history, brand_words=self._brand_words)
        clauses = self._clauses(ad)
        hooks: dict[str, str] = {}
        fit: dict[str, float] = {}
        for point, options in clauses.items():
            scored = [(angle_score(h, prof), -j, h) for j, h in enumerate(options)]
            best = max(scored)  # ties: the earlier clause (-j)
            hooks[point], fit[point] = best[2], best[0]
        ranked = sorted(hooks, key=lambda p: -(fit[p] + self.sim_weight * float(self._vec(hooks[p]) @ u)))
        best_fit = max(fit.values(), default=0.0)
        lead_first = None
        seg_fit = [
            (angle_score(segments[i], prof), -i)
            for i in range(1, len(segments))
            if re.search(r"[A-Za-z]{3}", segments[i])
        ]
        if seg_fit and max(seg_fit)[0] > max(best_fit, 0.0):
            lead_first = -max(seg_fit)[1]
        top = prof.top_angles(1)
        hook_first = bool(ranked and top and touches(hooks[ranked[0]], top[0]))
        return hooks, ranked, lead_first, hook_first, describe(prof)

    sim_weight = 0.3

    def _clauses(self, ad: dict[str, Any]) -> dict[str, list[str]]:
        """selling point -> the hooks of its clauses that read well (first clause first; cached per ad)."""
        key = (ad["title"], tuple(ad.get("selling_points", [])))
        if key not in self._clause_cache:
            out: dict[str, list[str]] = {}
            for p in key[1]:
                parts = [p] + [c for c in re.split(r"(?<=\w)[,;:.!?]\s+|\s[-\u2013\u2014]\s", p)[1:] if c.strip()]
                hs = list(dict.fromkeys(h for c in parts if self.good_hook(h := self.hook(c), ad["title"])))
                if hs:
                    out[p] = hs
            self._clause_cache[key] = out
        return self._clause_cache[key]

    # ---- Teacher protocol ---------------------------------------------------------------------
    def _hooks(self, ad: dict[str, Any]) -> dict[str, str]:
        """selling point -> its hook, for the points whose hook reads well (cached per ad title)."""
        key = (ad["title"], tuple(ad.get("selling_points", [])))
        if key not in self._hook_cache:
            title = ad["title"]
            self._hook_cache[key] = {p: h for p in key[1] if self.good_hook(h := self.hook(p), title)}
        return self._hook_cache[key]

    def _texts(self, req: TeacherRequest) -> list[str]:
        p = req.payload
        out = list(p.get("history") or [])
        if req.task == "cot_title":
            ad = p["ad"]
            hooks = self._hooks(ad)
            out += [ad["title"], *hooks.values()]
            if self.personalize == "profile":
                out += [h for hs in self._clauses(ad).values() for h in hs]
            if not hooks:
                out += [s for s in _SEG_SPLIT.split(ad["title"]) if s.strip()]
            prof = p.get("profile") or {}
            out += list(prof.get("long_term_interests", [])) + list(prof.get("short_term_interests", []))
        return out

    def answer(self, req: TeacherRequest) -> dict[str, Any]:
        if req.task == "profile":
            return self.profile(req.payload.get("history") or [], req.payload.get("history_brands"))
        if req.task == "cot_title":
            return self.cot_title(req.payload)
        raise ValueError(
            "the offline teacher does not fact-check; the rule-based guard does (drop --llm-fact-check)"
        )

    async def generate(
        self, requests: Sequence[TeacherRequest], *, on_result: ResultCallback | None = None
    ) -> list[TeacherResult]:
        self._embed(t for r in requests for t in self._texts(r))
        results = []
        for req in requests:
            try:
                res = TeacherResult(key=req.key, text=json.dumps(self.answer(req), ensure_ascii=False))
            except (ValueError, KeyError, TypeError) as exc:
                res = TeacherResult(
                    key=req.key,
                    text=None,
                    error=type(exc).__name__,
                    failures=[{"attempt": 1, "kind": "offline_error", "detail": str(exc)[:300]}],
                )
            if on_result:
                on_result(req, res)
            results.append(res)
        return results
