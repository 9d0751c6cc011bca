"""An LLM as judge over any OpenAI-compatible chat endpoint (``hllm-creator judge --llm-model``).

Pairwise, it asks twice per pair with the order swapped and counts a disagreement as Same; pointwise, it
reads a 0-100 click likelihood. ``eval.judge.compare`` takes it like any other judge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from creator.records.types import Ad, User

JUDGE_PAIRWISE_V1 = """You judge ad titles for one shopper.
The shopper recently engaged with these items (oldest first):
{history}

The product: {ad_title}
Product facts: {ad_points}

Title A: {title_a}
Title B: {title_b}

Which title is this shopper more likely to click? A title that invents facts not in the product
facts, copies the shopper's past items, or stuffs keywords is worse. Answer with one word: A, B or Same."""

JUDGE_POINTWISE_V1 = """The shopper recently engaged with these items (oldest first):
{history}

Product: {ad_title}
Ad title shown: {title}

How likely is this shopper to click this ad title? Answer with one integer from 0 to 100."""


class LLMJudge:
    """An LLM as judge over any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, OpenAI...).

    ``prefer`` asks twice per pair with the order swapped: Good only if A wins both times, Bad only
    if B wins both times, otherwise Same (disagreement, a tie or an unreadable answer).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        temperature: float = 0.0,
        max_history: int = 20,
    ) -> None:
        if client is None:
            from openai import OpenAI

            client = OpenAI(base_url=base_url, api_key=api_key or "EMPTY")
        self.client, self.model, self.temperature, self.max_history = client, model, temperature, max_history
        self.unreadable = 0

    def _ask(self, prompt: str) -> str:
        resp = self.client.chat.completions.create(
            model=self.model,
            temperature=self.temperature,
            max_tokens=8,
            messages=[{"role": "user", "content": prompt}],
        )
        return (resp.choices[0].message.content or "").strip()

    def _history(self, user: User) -> str:
        return "\n".join(f"- {h.title}" for h in user.recent(self.max_history)) or "- (none)"

    def _choice(self, answer: str) -> str | None:
        m = re.match(r"\W*(same|a|b)\b", answer.lower())
        if m is None:
            self.unreadable += 1
            return None
        return m.group(1)

    def prefer(
        self,
        users: Sequence[User],
        titles_a: Sequence[str],
        titles_b: Sequence[str],
        ads: Sequence[Ad] | None = None,
    ) -> list[str]:
        out = []
        for i, (u, a, b) in enumerate(zip(users, titles_a, titles_b, strict=True)):
            ad = ads[i] if ads is not None else None
            ctx = {
                "history": self._history(u),
                "ad_title": ad.title if ad else "(not given)",
                "ad_points": "; ".join(ad.selling_points[:6]) if ad else "(not given)",
            }
            first = self._choice(self._ask(JUDGE_PAIRWISE_V1.format(**ctx, title_a=a, title_b=b)))
            second = self._choice(self._ask(JUDGE_PAIRWISE_V1.format(**ctx, title_a=b, title_b=a)))
            out.append(
                "good"
                if (first, second) == ("a", "b")
                else "bad"
                if (first, second) == ("b", "a")
                else "same"
            )
        return out

    def score(
        self, users: Sequence[User], titles: Sequence[str], ads: Sequence[Ad] | None = None
    ) -> np.ndarray:
        out = np.zeros(len(titles), dtype=np.float32)
        for i, (u, t) in enumerate(zip(users, titles, strict=True)):
            ad_title = ads[i].title if ads is not None else "(not given)"
            answer = self._ask(
                JUDGE_POINTWISE_V1.format(history=self._history(u), ad_title=ad_title, title=t)
            )
            m = re.search(r"\d+", answer)
            if m is None:
                self.unreadable += 1
            out[i] = min(int(m.group()), 100) / 100.0 if m else 0.5
        return out
