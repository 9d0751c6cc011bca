"""Grounded decoding as logits masks, in the forms decoding engines take them.

``creator.decoding.words`` says which tokens may come next (``WordConstraint.allowed()``); this module turns that
into masked logits: ``allowed_mask`` for a batch (the transformers backend), ``GroundedLogitsProcessor`` for
``model.generate`` (``PersonalizedGenerator.generate``), and ``RowConstraint`` for engines that call a
function per request with the tokens written so far (vLLM, ``creator.decoding.vllm``).
"""

from __future__ import annotations

import torch

from creator.decoding.words import AdVocabulary, WordConstraint


def allowed_mask(allowed: list[set[int] | None], vocab: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, V) bool, True where row b may emit token v; a row with ``None`` allows everything."""
    mask = torch.ones(len(allowed), vocab, dtype=torch.bool, device=device)
    for b, ids in enumerate(allowed):
        if ids is not None:
            bad = [i for i in ids if not 0 <= i < vocab]
            if bad:
                raise ValueError(f"allowed token ids {bad[:5]} are outside the vocabulary of {vocab}; build them "
                                 "with the same tokenizer as the model")
            mask[b] = False
            mask[b, torch.as_tensor(sorted(ids), dtype=torch.long, device=device)] = True
    return mask


class RowConstraint:
    """One sequence's constraint as a function of (tokens written so far, logits row) -> masked row: the form
    serving engines call per request (vLLM's request-level logits processors). It advances by the tokens
    written since its last call, so the engine may hand it the same growing list every step."""

    def __init__(self, constraint: WordConstraint) -> None:
        self.constraint = constraint
        self.seen = 0

    def __call__(self, output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        for t in output_ids[self.seen:]:
            self.constraint.advance(int(t))
        self.seen = len(output_ids)
        allowed = allowed_mask([self.constraint.allowed()], logits.shape[-1], logits.device)[0]
        return logits.masked_fill(~allowed, float("-inf"))


class GroundedLogitsProcessor:
    """A transformers ``LogitsProcessor``: row b of the batch decodes under ``WordConstraint(vocabs[b])``.

    ``prompt_len``: prompt ids at the start of ``input_ids`` (0 with ``inputs_embeds``, where transformers
    passes only the generated ids); each row's ``RowConstraint`` sees the ids written after them."""

    def __init__(self, vocabs: list[AdVocabulary | None], prompt_len: int = 0) -> None:
        self.rows = [RowConstraint(WordConstraint(v)) if v is not None else None for v in vocabs]
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        written = input_ids[:, self.prompt_len:].tolist()
        return torch.stack([row(written[b], scores[b]) if row is not None else scores[b]
                            for b, row in enumerate(self.rows)])
