"""Token examples for SFT/DPO and the collators that batch them with the user vectors.

An SFT example (``sft_example``) is the prompt (with ``<u0>..<u{k-1}>``) followed by the title and EOS;
labels are -100 over the prompt. When the auxiliary losses are on it also carries the profile task
(``profile_input_ids`` / ``profile_labels``), the profile text alone (``profile_text_ids``, for the
alignment loss) and the ad title alone (``ad_text_ids``, for the match loss), plus group ids so the same
user or ad twice in a batch is not a negative.

``UserSFTCollator`` pads right and returns ``input_ids``, ``attention_mask``, ``labels``, ``user_emb``
(B, d_user) float and the aux keys; ``UserPreferenceCollator`` is TRL's preference collator plus
``user_emb`` repeated for the chosen half and the rejected half (the same user for both titles).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference

from creator.records.errors import DataError
from creator.records.types import Ad

AUX_PREFIXES = ("profile_", "ad_")


def group_id(key: str) -> int:
    """A stable 31-bit id for a user or ad key (for in-batch negative masking)."""
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def sft_example(
    gen: Any,
    ad: Ad,
    title: str,
    user_vec: np.ndarray,
    *,
    max_length: int,
    user_id: str = "",
    profile_text: str | None = None,
    max_profile_tokens: int = 128,
    with_ad_text: bool = False,
) -> dict[str, Any]:
    """One tokenised SFT example; ``gen`` is a ``PersonalizedGenerator`` (its prompt builder and tokenizer).

    The prompt is never truncated (a cut would drop user placeholders or facts); a prompt that leaves no
    room for a title raises ``DataError`` naming the ad and the fix."""
    prompt = gen.prompt_ids(ad)
    completion = gen.completion_ids(title)
    room = max_length - len(prompt)
    if room < 2:
        raise DataError(
            "prompt leaves no room for the title",
            field="max_length",
            expected=f"> {len(prompt) + 1}",
            got=str(max_length),
            fix=f"raise max_length or lower max_points (ad {ad.ad_id})",
        )
    completion = completion[:room]
    ex: dict[str, Any] = {
        "input_ids": prompt + completion,
        "labels": [-100] * len(prompt) + completion,
        "user_emb": np.asarray(user_vec, dtype=np.float32).tolist(),
    }
    if profile_text is not None:
        tok = gen.tokenizer
        pprompt = list(tok(gen.profile_prompt_text())["input_ids"])
        ptext = list(tok(profile_text, add_special_tokens=False)["input_ids"])[:max_profile_tokens]
        target = ptext + [tok.eos_token_id]
        ex["profile_input_ids"] = pprompt + target
        ex["profile_labels"] = [-100] * len(pprompt) + target
        ex["profile_text_ids"] = ptext or [tok.eos_token_id]
        ex["profile_group"] = group_id(user_id or profile_text)
    if with_ad_text:
        ex["ad_text_ids"] = list(gen.tokenizer(ad.title, add_special_tokens=False)["input_ids"])[:64] or [
            gen.tokenizer.eos_token_id
        ]
        ex["ad_group"] = group_id(ad.ad_id)
    return ex


def _pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def _mask(seqs: list[list[int]]) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], dtype=torch.long)


@dataclass
class UserSFTCollator:
    """Right-pads SFT examples (see the module docstring for the keys)."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [e["input_ids"] for e in examples]
        batch = {
            "input_ids": _pad(ids, self.pad_token_id),
            "attention_mask": _mask(ids),
            "labels": _pad([e["labels"] for e in examples], -100),
            "user_emb": torch.tensor([e["user_emb"] for e in examples], dtype=torch.float32),
        }
        if "profile_input_ids" in examples[0]:
            p = [e["profile_input_ids"] for e in examples]
            t = [e["profile_text_ids"] for e in examples]
            batch.update(
                profile_input_ids=_pad(p, self.pad_token_id),
                profile_attention_mask=_mask(p),
                profile_labels=_pad([e["profile_labels"] for e in examples], -100),
                profile_text_ids=_pad(t, self.pad_token_id),
                profile_text_mask=_mask(t),
                profile_group=torch.tensor([e["profile_group"] for e in examples], dtype=torch.long),
            )
        if "ad_text_ids" in examples[0]:
            a = [e["ad_text_ids"] for e in examples]
            batch.update(
                ad_text_ids=_pad(a, self.pad_token_id),
                ad_text_mask=_mask(a),
                ad_group=torch.tensor([e["ad_group"] for e in examples], dtype=torch.long),
            )
        return batch


class UserPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator (batch = [chosen..., rejected...]) plus ``user_emb`` = cat([u, u])."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().torch_call(examples)
        u = torch.tensor([e["user_emb"] for e in examples], dtype=torch.float32)  # (B, d_user)
        out["user_emb"] = torch.cat([u, u], dim=0)  # (2B, d_user): the same user for chosen and rejected
        return out
