"""The transformers backend: batched decoding from ``inputs_embeds`` with left padding, seeded per request.

Runs anywhere torch runs (CPU in CI, one GPU for users without vLLM). It owns a small decoding loop
instead of calling ``model.generate`` so that each candidate draws from its own ``torch.Generator``
(seeded from the sampling seed and the request key): the same request gives the same text whatever
batch, shard or process it lands in. Prompt positions come from ``prompt_embeds``; generated tokens
are embedded by the model's own ``embed_tokens``, exactly as vLLM does with ``prompt_embeds``.

    backend = HFBackend(model, tokenizer, batch_size=16)
    texts = backend.generate([GenerationRequest("seg0|ad1", embeds)], SamplingConfig(n=4, seed=0))
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from creator.backends.base import GenerationRequest, SamplingConfig, plan_batches, request_seed
from creator.decoding.logits import allowed_mask
from creator.decoding.words import WordConstraint

logger = logging.getLogger(__name__)

# Vocabularies at least this large score grounded rows on their allowed tokens only (see ``_SubsetHead``); below
# it the full LM head is cheap and the path stays the model's own forward.
SUBSET_HEAD_MIN_VOCAB = 32768


class _SubsetHead:
    """The LM head applied to the tokens grounded decoding allows, not to the whole vocabulary.

    Under grounded decoding every row may only emit a few hundred token ids (its ad's words), yet a 262k-row
    head (Gemma 3) costs more per decoding step than the 18 layers under it. Scoring the union of the rows'
    allowed ids and leaving every other logit at -inf gives the same masked logits the full head would, so
    ``_pick`` draws the same tokens. Only for heads that are a plain linear map (no bias, no logit scaling;
    Gemma's final soft-capping applied as the model does)."""

    def __init__(self, backbone: Any, weight: torch.Tensor, softcap: float | None) -> None:
        self.backbone, self.weight, self.softcap = backbone, weight, softcap

    @classmethod
    def of(cls, model: Any) -> _SubsetHead | None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        cfg = base.config.get_text_config()
        if any(getattr(cfg, a, None) not in (None, 1.0)
               for a in ("logit_scale", "logits_scaling", "output_multiplier", "lm_head_multiplier")):
            return None
        head = base.get_output_embeddings()
        if head is None or getattr(head, "bias", None) is not None or head.weight.shape[0] < SUBSET_HEAD_MIN_VOCAB:
            return None
        return cls(base.base_model, head.weight, getattr(cfg, "final_logit_softcapping", None))

    def __call__(self, allowed: list[set[int]], **kwargs: Any) -> tuple[Any, torch.Tensor]:
        kwargs.pop("logits_to_keep", None)
        out = self.backbone(**kwargs)
        hidden = out.last_hidden_state[:, -1, :]  # (B, H)
        ids = torch.tensor(sorted(set().union(*allowed)), dtype=torch.long, device=hidden.device)
        sub = hidden @ self.weight[ids].T  # (B, |allowed|)
        if self.softcap is not None:
            sub = torch.tanh(sub / self.softcap) * self.softcap
        logits = torch.full((hidden.shape[0], self.weight.shape[0]), float("-inf"), dtype=sub.dtype,
                            device=hidden.device)
        logits[:, ids] = sub
        return out.past_key_values, logits


class HFBackend:
    """Generation with a (PEFT-wrapped or plain) causal LM from transformers."""

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 16,
                 device: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = sorted({eos} if isinstance(eos, int) else set(eos or []))
        if not self.eos_ids:
            raise ValueError("the tokenizer and model define no eos token; set tokenizer.eos_token so "
                             "generation can stop")
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self._subset_head = _SubsetHead.of(self.model)

    @classmethod
    def from_generator(cls, generator: Any, **kwargs: Any) -> HFBackend:
        """The backend for a ``PersonalizedGenerator`` (its LoRA-wrapped model and tokenizer)."""
        model = getattr(generator, "model", None)
        tokenizer = getattr(generator, "tokenizer", None)
        if model is None or tokenizer is None:
            raise ValueError(f"{type(generator).__name__} has no .model/.tokenizer; pass a "
                             "PersonalizedGenerator or build HFBackend(model, tokenizer) directly")
        return cls(model, tokenizer, **kwargs)

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in requests]
        for batch in plan_batches(requests, self.batch_size):
            texts = self._generate_batch([requests[i] for i in batch], sampling)
            for i, candidates in zip(batch, texts, strict=True):
                out[i] = candidates
        return out

    @torch.no_grad()
    def _generate_batch(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[list[str]]:
        n = sampling.n
        rows = [(r, j) for r in requests for j in range(n)]  # each request repeated n times
        lengths = [r.prompt_embeds.shape[0] for r in requests]
        b, t = len(rows), max(lengths)
        hidden = requests[0].prompt_embeds.shape[1]
        dtype = next(self.model.parameters()).dtype
        embeds = torch.zeros(len(requests), t, hidden, dtype=dtype, device=self.device)  # (R, T, H), left padded
        mask = torch.zeros(len(requests), t, dtype=torch.long, device=self.device)  # (R, T), 1 = real
        for i, (req, length) in enumerate(zip(requests, lengths, strict=True)):
            if req.prompt_embeds.shape[1] != hidden:
                raise ValueError(f"request {req.key!r} has hidden size {req.prompt_embeds.shape[1]}, "
                                 f"others {hidden}; all requests must come from one generator")
            embeds[i, t - length:] = req.prompt_embeds.to(self.device, dtype)
            mask[i, t - length:] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (R, T): real tokens count from 0
        gens = [torch.Generator().manual_seed(request_seed(sampling.seed, req.key, j)) for req, j in rows]
        eos = torch.tensor(self.eos_ids, device=self.device)
        constraints = [WordConstraint(req.grounding) if req.grounding is not None else None for req, _ in rows]
        grounded = any(c is not None for c in constraints)

        # The prompt is read once per request, not once per candidate: the n candidates share its KV cache
        # (repeated after the prefill), so 4 candidates cost one prompt pass, not four. logits_to_keep=1: only
        # the last position is projected; a 262k-row LM head (Gemma 3) would otherwise make (R, T, V) floats.
        subset = self._subset_head if constraints and all(c is not None for c in constraints) else None

        state: dict[str, list] = {}  # the rows' allowed sets at the current position, computed once per step

        def forward(**kwargs: Any) -> tuple[Any, torch.Tensor]:
            if subset is not None:  # grounded rows, large vocabulary: only the allowed tokens are scored
                state["allowed"] = [c.allowed() for c in constraints]
                return subset(state["allowed"], **kwargs)
            out = self.model(**kwargs)
            return out.past_key_values, out.logits[:, -1, :]

        past, logits = forward(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True,
                               logits_to_keep=1)
        if n > 1:
            past.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
            positions = positions.repeat_interleave(n, dim=0)
        next_pos = positions[:, -1:] + 1  # (B, 1)
        finished = torch.zeros(b, dtype=torch.bool, device=self.device)
        steps: list[torch.Tensor] = []
        for step in range(sampling.max_new_tokens):
            logits = logits.float()
            if grounded:  # (B, V): each grounded row may only go on with a word of its ad
                sets = state.pop("allowed", None) or [c.allowed() if c is not None else None for c in constraints]
                if all(ids is not None for ids in sets):
                    token = self._pick_among(logits, sets, sampling, gens)  # (B,)
                else:
                    allowed = allowed_mask(sets, logits.shape[-1], self.device)
                    token = self._pick(logits.masked_fill(~allowed, float("-inf")), sampling, gens)  # (B,)
            else:
                token = self._pick(logits, sampling, gens)  # (B,)
            for c, t in zip(constraints, token.tolist(), strict=True):
                if c is not None:
                    c.advance(t)
            token = torch.where(finished, torch.full_like(token, self.pad_id), token)
            steps.append(token)
            finished |= torch.isin(token, eos)
            if bool(finished.all()) or step == sampling.max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones(b, 1, dtype=mask.dtype, device=self.device)], dim=1)
            past, logits = forward(input_ids=token[:, None], attention_mask=mask, position_ids=next_pos,
                                   past_key_values=past, use_cache=True)
            next_pos = next_pos + 1
        texts = self._decode(torch.stack(steps, dim=1))
        return [texts[i * n:(i + 1) * n] for i in range(len(requests))]

    @classmethod
    def _pick_among(cls, logits: torch.Tensor, sets: list[set[int]], sampling: SamplingConfig,
                    gens: list[torch.Generator]) -> torch.Tensor:
        """``_pick`` when every row is grounded: on the columns some row may emit (a few hundred of Gemma's 262k),
        not the whole vocabulary. Greedy picks are the same tokens; draws are as random and as seeded, but over a
        shorter vector. The softmax, the top-p sort and the draw over 262k columns per row were a third of a step."""
        cols = sorted(set().union(*sets))
        if cols and not 0 <= cols[0] <= cols[-1] < logits.shape[-1]:
            raise ValueError(f"allowed token ids up to {cols[-1]} are outside the vocabulary of {logits.shape[-1]}; "
                             "build them with the same tokenizer as the model")
        ids = torch.tensor(cols, dtype=torch.long, device=logits.device)  # (C,)
        where = {t: j for j, t in enumerate(cols)}
        mask = torch.zeros(len(sets), len(cols), dtype=torch.bool, device=logits.device)  # (B, C)
        for b, row in enumerate(sets):
            mask[b, [where[t] for t in row]] = True
        sub = logits.index_select(1, ids).masked_fill(~mask, float("-inf"))  # (B, C)
        return ids[cls._pick(sub, sampling, gens)]

    @staticmethod
    def _pick(logits: torch.Tensor, sampling: SamplingConfig, gens: list[torch.Generator]) -> torch.Tensor:
        """Next token per row: argmax, or a draw after temperature, top-k and top-p filtering."""
        if sampling.greedy:
            return logits.argmax(dim=-1)
        logits = logits / sampling.temperature  # (B, V)
        top = None  # (values, indices) of the top-k, sorted: top-p then sorts k entries, not the vocabulary
        if 0 < sampling.top_k < logits.shape[-1]:
            top = torch.topk(logits, sampling.top_k, dim=-1)
            logits = logits.masked_fill(logits < top.values[:, -1:], float("-inf"))
        if sampling.top_p < 1.0:
            # every entry outside the top-k is -inf (probability 0), so the nucleus lies inside it; a 262k-row
            # vocabulary (Gemma 3) made the full sort most of a decoding step
            sorted_logits, order = top if top is not None else torch.sort(logits, dim=-1, descending=True)
            probs = sorted_logits.softmax(dim=-1)
            drop = (probs.cumsum(dim=-1) - probs) >= sampling.top_p  # keeps the token crossing top_p
            drop[:, 0] = False
            logits = logits.scatter(1, order, sorted_logits.masked_fill(drop, float("-inf")))
        probs = logits.softmax(dim=-1).cpu()
        picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(gens)]
        return torch.cat(picks).to(logits.device)

    def _decode(self, tokens: torch.Tensor) -> list[str]:
        texts = []
        for row in tokens.tolist():
            cut = next((i for i, tok in enumerate(row) if tok in self.eos_ids), len(row))
            texts.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return texts
