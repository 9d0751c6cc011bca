"""A teacher LLM as a fact checker behind the guard's ``FactChecker`` protocol (``creator.guard.check``).

    from creator.guard.check import ChainedFactChecker, Guard, RuleFactChecker
    checker = ChainedFactChecker(RuleFactChecker(brands), TeacherFactChecker(OpenAITeacher(cfg)))
    Guard(fact_checker=checker).check(title, ad)

Each check asks ``FACT_CHECK_V1`` once (greedy); an unsupported verdict becomes an
``ungrounded_claim`` failure listing the teacher's unsupported claims. A teacher that gives no
usable answer fails the title (the guard never passes an unverified title).
"""

from __future__ import annotations

import asyncio

from creator.guard.check import GuardFailure
from creator.modeling.prompts import FACT_CHECK_V1, bullets
from creator.records.types import Ad
from data_pipelines.teachers.base import Teacher, TeacherRequest, TeacherSampling


class TeacherFactChecker:
    def __init__(self, teacher: Teacher, *, max_tokens: int = 512) -> None:
        self.teacher = teacher
        self.name = f"teacher:{teacher.name}"
        self.sampling = TeacherSampling(temperature=0.0, top_p=1.0, max_tokens=max_tokens)
        self._loop = asyncio.new_event_loop()  # one loop for all checks: an HTTP client stays bound to it

    def request(self, title: str, ad: Ad) -> TeacherRequest:
        facts = ", ".join(f.text for f in ad.facts if f.kind != "brand") or "(none)"
        messages = FACT_CHECK_V1.render(
            title=ad.title,
            brand=ad.brand or "(none)",
            selling_points=bullets(ad.selling_points),
            facts=facts,
            candidate=title,
        )
        return TeacherRequest(
            key=f"check:{ad.ad_id}",
            task="fact_check",
            messages=messages,
            payload={"ad_id": ad.ad_id, "candidate": title},
            sampling=self.sampling,
        )

    def check(self, title: str, ad: Ad) -> list[GuardFailure]:
        result = self._loop.run_until_complete(self.teacher.generate([self.request(title, ad)]))[0]
        if not result.ok:
            return [GuardFailure("ungrounded_claim", title, f"{self.name} gave no verdict ({result.error})")]
        data = result.data()
        if data["supported"]:
            return []
        claims = ", ".join(data["unsupported_claims"]) or title
        return [
            GuardFailure(
                "ungrounded_claim", claims, f"{self.name}: {data['reason'] or 'not supported'}"[:300]
            )
        ]
