"""A teacher from a local transformers causal LM (any HF model id or folder), batched.

Prompts are built with the tokenizer's chat template when it has one (plain "role: content"
lines otherwise), left-padded and generated in batches of ``batch_size`` in a worker thread so
the event loop stays free. A reply without a usable JSON object is retried (sampled) up to
``max_retries`` times and every failed attempt is recorded.

    teacher = HFTeacher(HFConfig(model="Qwen/Qwen2.5-1.5B-Instruct", batch_size=8))
"""

from __future__ import annotations

import asyncio
import logging
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


@dataclass
class HFConfig:
    model: str
    batch_size: int = 8
    device: str = "cpu"
    dtype: str = "auto"
    max_retries: int = 1
    max_input_tokens: int = 2048

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("HFConfig.model is empty; pass --teacher-model with an HF model id or folder")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


class HFTeacher:
    uses_payload = False

    def __init__(self, config: HFConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from creator.modeling.bases import resolve_base

        self.config = config
        self.name = f"hf:{config.model}"
        path = resolve_base(config.model)  # a named base (gemma-270m): its converted folder; else the id / folder
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = getattr(torch, config.dtype) if config.dtype != "auto" else "auto"
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(config.device).eval()
        self._lock = asyncio.Lock()

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant: "

    def _generate_batch(self, batch: Sequence[TeacherRequest], sample: bool) -> list[str]:
        import torch

        s = batch[0].sampling
        enc = self.tokenizer(
            [self._prompt(r.messages) for r in batch],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.config.max_input_tokens,
            add_special_tokens=False,
        ).to(self.config.device)
        kwargs: dict[str, Any] = {"max_new_tokens": s.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if sample or s.temperature > 0:
            kwargs.update(do_sample=True, temperature=max(s.temperature, 0.7), top_p=s.top_p)
        else:
            kwargs.update(do_sample=False)
        if s.seed is not None:
            torch.manual_seed(s.seed)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)  # (B, T_in + T_new)
        new = out[:, enc["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    async def generate(
        self, requests: Sequence[TeacherRequest], *, on_result: ResultCallback | None = None
    ) -> list[TeacherResult]:
        results: dict[str, TeacherResult] = {}
        failures: dict[str, list[dict[str, Any]]] = {r.key: [] for r in requests}
        pending = list(requests)
        start = time.perf_counter()
        for attempt in range(1, self.config.max_retries + 2):
            if not pending:
                break
            # one sampling setting per batch: group requests that share it
            groups: dict[Any, list[TeacherRequest]] = {}
            for r in pending:
                groups.setdefault(r.sampling, []).append(r)
            still: list[TeacherRequest] = []
            for group in groups.values():
                for i in range(0, len(group), self.config.batch_size):
                    batch = group[i : i + self.config.batch_size]
                    t0 = time.perf_counter()
                    async with self._lock:
                        texts = await asyncio.to_thread(self._generate_batch, batch, attempt > 1)
                    for req, text in zip(batch, texts, strict=True):
                        try:
                            results[req.key] = TeacherResult(
                                key=req.key,
                                text=validate_reply(req.task, text),
                                attempts=attempt,
                                failures=failures[req.key],
                            )
                        except ReplyError as exc:
                            failures[req.key].append(
                                {
                                    "attempt": attempt,
                                    "kind": "invalid_json",
                                    "detail": str(exc)[:300],
                                    "elapsed_s": round(time.perf_counter() - t0, 3),
                                }
                            )
                            still.append(req)
                            continue
                        if on_result:
                            on_result(req, results[req.key])
            pending = still
        for req in pending:
            results[req.key] = TeacherResult(
                key=req.key,
                text=None,
                error="invalid_json",
                attempts=self.config.max_retries + 1,
                failures=failures[req.key],
                elapsed_s=round(time.perf_counter() - start, 3),
            )
            if on_result:
                on_result(req, results[req.key])
        return [results[r.key] for r in requests]
