"""A teacher from a local transformers causal LM (any HF model id or folder), batched.

An instruction-tuned model (one whose tokenizer has a chat template) gets the chat prompts and answers in
JSON. A base model (no chat template, e.g. ``gemma-270m``) cannot follow them, so it gets completion prompts
with worked examples instead (``data_pipelines.teachers.fewshot``): it writes one line, and the task's JSON
is built from that line. ``prompt_style`` forces either. Prompts are left-padded and generated in batches
of ``batch_size`` in a worker thread so the event loop stays free. A reply without a usable answer is
retried (sampled) up to ``max_retries`` times and every failed attempt is recorded.

    teacher = HFTeacher(HFConfig(model="Qwen/Qwen2.5-1.5B-Instruct", batch_size=8))
    teacher = HFTeacher(HFConfig(model="gemma-270m"))          # a base model: few-shot completion prompts
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from creator.records.rewrite import length_budget
from data_pipelines.teachers import fewshot
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
    # chat: the JSON prompts through the chat template; fewshot: completion prompts with worked examples, for a
    # base model; auto: fewshot when the tokenizer has no chat template
    prompt_style: str = "auto"
    fewshot_max_tokens: int = 48  # one line: an interest list or a title

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("HFConfig.model is empty; pass --teacher-model with an HF model id or folder")
        if self.prompt_style not in ("auto", "chat", "fewshot"):
            raise ValueError(f"prompt_style must be auto, chat or fewshot, got {self.prompt_style!r}")
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
        self.has_chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.fewshot = config.prompt_style == "fewshot" or (config.prompt_style == "auto" and not self.has_chat)
        if self.fewshot:  # the prompt is built from the request's data, so the cache keys on it
            self.uses_payload = True
            self.name = f"hf-fewshot:{config.model}"

    def _prompt(self, req: TeacherRequest) -> str:
        if self.fewshot:
            p = req.payload
            if req.task == "profile":
                return fewshot.profile_prompt(p.get("history") or [])
            if req.task == "cot_title":
                return fewshot.title_prompt(p["ad"], p.get("history") or [], p.get("profile") or {})
            raise ValueError(
                f"{self.config.model} is a base model (no chat template) and is asked in few-shot completion "
                "prompts, which do not fact-check: drop --llm-fact-check (the rule-based guard checks every "
                "title), or use an instruction-tuned teacher"
            )
        if self.has_chat:
            return self.tokenizer.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
        return "\n".join(f"{m['role']}: {m['content']}" for m in req.messages) + "\nassistant: "

    def _reply(self, req: TeacherRequest, text: str) -> str:
        """The reply as the task's JSON text (a few-shot line is turned into it first); ReplyError if unusable."""
        if self.fewshot:
            p = req.payload
            if req.task == "profile":
                data = fewshot.profile_reply(text)
            else:
                ad = p["ad"]
                budget = length_budget(ad["title"].strip(), int(p.get("max_chars", 120)), p.get("max_added_chars"))
                data = fewshot.title_reply(text, ad, budget, suitable=fewshot.interests_line(p.get("profile") or {}))
            text = json.dumps(data, ensure_ascii=False)
        return validate_reply(req.task, text)

    def _generate_batch(self, batch: Sequence[TeacherRequest], sample: bool) -> list[str]:
        import torch

        s = batch[0].sampling
        enc = self.tokenizer(
            [self._prompt(r) for r in batch],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.config.max_input_tokens,
            add_special_tokens=self.fewshot,  # a chat template writes its own BOS; a plain prompt needs the tokenizer's
        ).to(self.config.device)
        kwargs: dict[str, Any] = {"max_new_tokens": s.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if self.fewshot:  # one line: stop at its end
            kwargs.update(max_new_tokens=min(s.max_tokens, self.config.fewshot_max_tokens), stop_strings=["\n"],
                          tokenizer=self.tokenizer)
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
                                text=self._reply(req, text),
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
