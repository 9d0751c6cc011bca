"""The teacher requests of a CoT build: a user's profile, a CoT personalized title, a fact check.

Each request carries its rendered prompt (``creator.modeling.prompts``, named and versioned), the structured
payload an offline teacher reads instead of the prompt, and its sampling settings; candidate ``k`` of a
row gets seed ``cfg.seed + k`` so candidates differ and a rerun asks the same questions (cache hits).
"""

from __future__ import annotations

import json
from typing import Any

from creator.io.catalog import Catalog
from creator.modeling.prompts import COT_TITLE_V1, FACT_CHECK_V1, PROFILE_V1, bullets, numbered
from creator.records.types import Ad, User
from data_pipelines.cot_config import CoTConfig
from data_pipelines.teachers import TeacherRequest, TeacherSampling


def _ad_view(ad: Ad) -> dict[str, Any]:
    return {
        "ad_id": ad.ad_id,
        "title": ad.title,
        "brand": ad.brand,
        "selling_points": ad.selling_points,
        "facts": [f.text for f in ad.facts if f.kind != "brand"],
    }


class CoTRequests:
    """Builds the requests of one build's rows; ``i`` is the row, ``k`` the candidate."""

    def __init__(self, cfg: CoTConfig, catalog: Catalog) -> None:
        self.cfg = cfg
        self.catalog = catalog

    def _sampling(self, k: int = 0) -> TeacherSampling:
        return TeacherSampling(
            temperature=self.cfg.temperature,
            top_p=self.cfg.top_p,
            max_tokens=self.cfg.max_tokens,
            seed=self.cfg.seed + k,
        )

    def _history(self, user: User) -> list[str]:
        return [h.title for h in user.recent(self.cfg.history_len)]

    def profile(self, i: int, user: User) -> TeacherRequest:
        titles = self._history(user)
        brands = [
            self.catalog.ads[h.item_id].brand
            for h in user.recent(self.cfg.history_len)
            if h.item_id in self.catalog.ads
        ]
        return TeacherRequest(
            key=f"profile:{i}",
            task="profile",
            messages=PROFILE_V1.render(history=numbered(titles)),
            payload={"history": titles, "history_brands": brands},
            sampling=self._sampling(),
        )

    def cot(self, i: int, k: int, user: User, ad: Ad, profile: dict[str, Any]) -> TeacherRequest:
        view = _ad_view(ad)
        titles = self._history(user)
        added = self.cfg.max_added_chars
        messages = COT_TITLE_V1.render(
            profile=json.dumps(profile, ensure_ascii=False),
            history=numbered(titles, limit=10),
            title=ad.title,
            brand=ad.brand or "(none)",
            selling_points=bullets(ad.selling_points),
            facts=", ".join(view["facts"]) or "(none)",
            max_chars=str(self.cfg.max_chars),
            max_added_chars=str(added) if added is not None else "any number of",
        )
        payload = {
            "ad": view,
            "history": titles,
            "profile": profile,
            "candidate": k,
            "max_chars": self.cfg.max_chars,
            "max_added_chars": added,
        }
        return TeacherRequest(
            key=f"cot:{i}:{k}",
            task="cot_title",
            messages=messages,
            payload=payload,
            sampling=self._sampling(k),
        )

    def check(self, i: int, k: int, ad: Ad, title: str) -> TeacherRequest:
        view = _ad_view(ad)
        messages = FACT_CHECK_V1.render(
            title=ad.title,
            brand=ad.brand or "(none)",
            selling_points=bullets(ad.selling_points),
            facts=", ".join(view["facts"]) or "(none)",
            candidate=title,
        )
        return TeacherRequest(
            key=f"check:{i}:{k}",
            task="fact_check",
            messages=messages,
            payload={"ad": view, "candidate": title},
            sampling=TeacherSampling(temperature=0.0, top_p=1.0, max_tokens=self.cfg.max_tokens),
        )
