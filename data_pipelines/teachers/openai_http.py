"""A teacher behind any OpenAI-compatible chat endpoint: ``vllm serve``, SGLang, OpenAI, DeepSeek.

Bounded concurrency (an ``asyncio.Semaphore``), retries with exponential backoff and jitter on
timeouts, connection errors, 408/409/429 and 5xx (``Retry-After`` honoured), on bodies that are
not a chat completion (truncated or not JSON) and on replies without a usable JSON object. Other
4xx (bad request, auth) fail at once. Every failed attempt is recorded on the result.

    teacher = OpenAITeacher(model="Qwen/Qwen3-8B", base_url="http://localhost:8000/v1", concurrency=64)
    results = asyncio.run(teacher.generate(requests))
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from data_pipelines.teachers.base import (
    ReplyError,
    ResultCallback,
    TeacherRequest,
    TeacherResult,
    validate_reply,
)

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


@dataclass
class OpenAIConfig:
    """Where the server is and how hard to push it. ``api_key`` falls back to ``$OPENAI_API_KEY``
    (then ``"EMPTY"``, which ``vllm serve`` accepts); ``base_url`` to ``$OPENAI_BASE_URL``."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    extra_body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("OpenAIConfig.model is empty; pass --teacher-model, e.g. Qwen/Qwen3-8B")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}; try 16 for vllm serve")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        self.base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.api_key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"


def _classify(exc: BaseException) -> tuple[str, bool, float | None]:
    """(failure kind, retry?, server-requested wait in seconds) for an exception from the client."""
    import openai

    if isinstance(exc, ReplyError):
        return "invalid_json", True, None
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        wait = None
        try:
            wait = float(exc.response.headers.get("retry-after"))
        except (TypeError, ValueError, AttributeError):
            wait = None
        if status == 429:
            return "rate_limited", True, wait
        if status >= 500:
            return f"server_error_{status}", True, wait
        return f"client_error_{status}", status in RETRYABLE_STATUS, wait
    if isinstance(
        exc, openai.APIResponseValidationError | ValueError | KeyError | TypeError | AttributeError
    ):
        return "bad_body", True, None
    return type(exc).__name__, True, None


class OpenAITeacher:
    """The HTTP teacher; ``name`` is ``openai:<model>`` (the cache key's model part)."""

    uses_payload = False

    def __init__(self, config: OpenAIConfig) -> None:
        import openai

        self.config = config
        self.name = f"openai:{config.model}"
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0
        )
        self.stats = {"requests": 0, "attempts": 0, "failed": 0}

    async def _once(self, req: TeacherRequest) -> str:
        s = req.sampling
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": req.messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.seed is not None:
            kwargs["seed"] = s.seed
        if self.config.extra_body:
            kwargs["extra_body"] = self.config.extra_body
        completion = await self._client.chat.completions.create(**kwargs)
        choices = getattr(completion, "choices", None)
        if not choices:
            raise ValueError(f"response has no choices: {str(completion)[:120]!r}")
        content = choices[0].message.content
        if not content:
            raise ReplyError("empty reply content (reasoning only, or cut off before the answer)")
        return validate_reply(req.task, content)

    async def _one(
        self, req: TeacherRequest, sem: asyncio.Semaphore, on_result: ResultCallback | None
    ) -> TeacherResult:
        cfg = self.config
        failures: list[dict[str, Any]] = []
        start = time.perf_counter()
        text: str | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, cfg.max_retries + 2):
            t0 = time.perf_counter()
            async with sem:
                self.stats["attempts"] += 1
                try:
                    text = await asyncio.wait_for(self._once(req), timeout=cfg.timeout_s * 1.5)
                except Exception as exc:  # every failure is classified and recorded, none escapes
                    kind, retry, wait = _classify(exc)
                    failures.append(
                        {
                            "attempt": attempt,
                            "kind": kind,
                            "detail": str(exc)[:300],
                            "elapsed_s": round(time.perf_counter() - t0, 3),
                        }
                    )
                    error = kind
                else:
                    error = None
                    break
            if not retry or attempt > cfg.max_retries:
                break
            backoff = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))
            delay = max(wait or 0.0, backoff * (0.5 + random.random() / 2))
            logger.debug("request %s: %s, retry %d in %.2fs", req.key, error, attempt, delay)
            await asyncio.sleep(delay)
        if text is None:
            self.stats["failed"] += 1
            logger.warning("request %s failed after %d attempts: %s", req.key, attempt, error)
        result = TeacherResult(
            key=req.key,
            text=text,
            error=error,
            attempts=attempt,
            failures=failures,
            elapsed_s=round(time.perf_counter() - start, 3),
        )
        if on_result:
            on_result(req, result)
        return result

    async def generate(
        self, requests: Sequence[TeacherRequest], *, on_result: ResultCallback | None = None
    ) -> list[TeacherResult]:
        sem = asyncio.Semaphore(self.config.concurrency)
        self.stats["requests"] += len(requests)
        return list(await asyncio.gather(*(self._one(r, sem, on_result) for r in requests)))

    async def aclose(self) -> None:
        await self._client.close()
