"""The losses TRL does not have: HLLM-Creator's auxiliary losses and a reference DPO loss.

- ``symmetric_info_nce``: user <-> profile alignment (CLIP-style, both directions averaged).
- ``pairwise_match_bce``: user <-> ad match as binary classification over every (row, row) pair.
- ``dpo_loss`` + ``sequence_logps``: DPO as in Rafailov et al. 2023, used to score held-out pairs and
  as the checked reference for what ``trl.DPOTrainer`` optimises (sigmoid loss, no label smoothing).
- ``AuxHeads``: the small trainable heads these losses need, attached to the model during SFT.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) states, (B, T) mask -> (B, H) mean over the real positions."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def symmetric_info_nce(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of CE(a->b) and CE(b->a) where row i of ``a`` matches row i of ``b``.

    ``a``, ``b``: (B, D), L2-normalised here. ``logit_scale``: log of the inverse temperature (clamped
    at log 100, as in CLIP/HLLM-Creator). ``groups``: (B,) ids; rows of the same group other than the
    diagonal are masked out (the same user twice in a batch is not a negative).
    For B=1 the loss is 0: a single pair has no negatives.
    """
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    logits = a @ b.T * logit_scale.clamp(max=math.log(100.0)).exp()  # (B, B)
    if groups is not None:
        same = groups[:, None] == groups[None, :]
        eye = torch.eye(len(groups), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(a), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pairwise_match_bce(user: torch.Tensor, ad: torch.Tensor, ad_groups: torch.Tensor) -> torch.Tensor:
    """BCE over all (user i, ad j) pairs of a batch: label 1 iff ad j is user i's ad (same ad group).

    ``user``, ``ad``: (B, D); logit = <user_i, ad_j> / sqrt(D). The other rows' ads are the negatives,
    like HLLM-Creator's cross-GPU negatives but inside one batch (so it works on one device)."""
    logits = user.float() @ ad.float().T / math.sqrt(user.shape[-1])  # (B, B)
    labels = (ad_groups[:, None] == ad_groups[None, :]).float()
    return F.binary_cross_entropy_with_logits(logits, labels)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits, (B, T) labels with -100 outside the completion -> (B,) summed log p(label).

    Position t predicts label t+1 (the usual causal shift)."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * mask).sum(-1)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO (sigmoid) loss over sequence log-probs -> (loss, chosen_rewards, rejected_rewards).

    With r_c = beta (log pi(y_c|x) - log ref(y_c|x)) and r_r likewise for the rejected title,
    loss = mean_i -log sigmoid(r_c,i - r_r,i). The rewards are detached (they are for logging).
    """
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()


class AuxHeads(nn.Module):
    """Heads of the auxiliary losses, on the generator's hidden size H.

    ``align``: pooled soft user tokens -> profile-text space (with a learnable temperature, init 1/0.05);
    ``match_user`` / ``match_ad``: pooled soft tokens and pooled ad-title states -> a shared match space.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.align = nn.Linear(hidden, hidden)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.05)))
        self.match_user = nn.Linear(hidden, hidden)
        self.match_ad = nn.Linear(hidden, hidden)
