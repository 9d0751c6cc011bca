"""The user vector as k soft tokens written into the prompt at the placeholder positions ``<u0>..<u{k-1}>``.

Why a forward pre-hook on the backbone and not a custom ``forward``: TRL 1.16 patches the causal LM's
forward with a fused LM head that calls the backbone (``model.base_model``) directly, so a wrapper
forward would be bypassed silently. The hook sits on the backbone itself: it pops ``user_emb`` from
the call's kwargs, embeds ``input_ids`` and overwrites the placeholder rows with the projected user
vector. The sequence length does not change, so every label and completion mask stays valid, and the
same function (``embed_with_user_tokens``) builds vLLM ``prompt_embeds`` at inference.

    >>> proj = UserProjector(d_user=8, hidden=16, k=2)
    >>> proj(torch.ones(3, 8)).shape
    torch.Size([3, 2, 16])
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

HOOK_ATTR = "_user_token_hook"


class UserProjector(nn.Module):
    """(B, d_user) user vectors -> (B, k, hidden) soft tokens in the LM's input-embedding space.

    Bias-free like HLLM-Creator's ``user_projector``, so a zero user vector gives zero soft tokens
    (a clean "no user" ablation). ``init_std`` should be about the RMS of the LM's token embeddings
    so unit-norm user vectors start at the scale the LM expects.
    """

    def __init__(self, d_user: int, hidden: int, k: int = 4, init_std: float = 0.02) -> None:
        super().__init__()
        if d_user < 1 or hidden < 1 or k < 1:
            raise ValueError(
                f"UserProjector needs positive sizes, got d_user={d_user}, hidden={hidden}, k={k}"
            )
        self.d_user, self.hidden, self.k = d_user, hidden, k
        self.proj = nn.Linear(d_user, k * hidden, bias=False)
        nn.init.normal_(self.proj.weight, std=init_std)

    def forward(self, user_emb: torch.Tensor) -> torch.Tensor:
        if user_emb.dim() != 2 or user_emb.shape[1] != self.d_user:
            raise ValueError(
                f"user vectors must have shape (B, {self.d_user}), got {tuple(user_emb.shape)}; "
                "pass the vectors of the user model this generator was trained with"
            )
        return self.proj(user_emb.to(self.proj.weight.dtype)).view(-1, self.k, self.hidden)  # (B, k, H)

    def config(self) -> dict[str, int]:
        return {"d_user": self.d_user, "hidden": self.hidden, "k": self.k}


def embed_with_user_tokens(
    embed_tokens: nn.Module,
    projector: UserProjector,
    input_ids: torch.Tensor,
    user_emb: torch.Tensor,
    placeholder_ids: list[int],
) -> torch.Tensor:
    """(B, T) ids + (B, d_user) vectors -> (B, T, H) input embeddings with the soft tokens at ``<u_i>``.

    Every row must hold each placeholder exactly once, in order (``<u0>`` first); any other count
    raises, because a truncated or duplicated slot would silently shift the user's meaning.
    """
    embeds = embed_tokens(input_ids)  # (B, T, H)
    soft = projector(user_emb).to(embeds.dtype)  # (B, k, H); autocast may have made embeds bf16
    k = soft.shape[1]
    if len(placeholder_ids) != k:
        raise ValueError(
            f"projector makes {k} soft tokens but {len(placeholder_ids)} placeholder ids were given"
        )
    slots = torch.zeros_like(input_ids, dtype=torch.bool)
    for i, pid in enumerate(placeholder_ids):
        hit = input_ids == pid  # (B, T)
        counts = hit.sum(dim=1)
        if not bool((counts == 1).all()):
            raise ValueError(
                f"every prompt must contain <u{i}> exactly once; counts per row {counts.tolist()}. "
                "Build prompts with PersonalizedGenerator.prompt_ids and never truncate the prompt"
            )
        slots |= hit
    # order check: the i-th slot of a row must be <u_i>, so masked_scatter fills them in order
    order = torch.stack(
        [(input_ids == pid).float().argmax(dim=1) for pid in placeholder_ids], dim=1
    )  # (B, k)
    if k > 1 and not bool((order[:, 1:] > order[:, :-1]).all()):
        raise ValueError("user placeholders must appear in order <u0>, <u1>, ...; fix the prompt template")
    return embeds.masked_scatter(slots.unsqueeze(-1), soft.reshape(-1, soft.shape[-1]))


@torch.no_grad()
def input_embedding_rms(model: nn.Module, sample: int = 4096) -> float:
    """RMS of what the embedding *module* outputs, over up to ``sample`` evenly spaced token ids.

    Not the RMS of the weight: Gemma's ``Gemma3TextScaledWordEmbedding`` multiplies the rows by sqrt(hidden)
    (25.3 for the 270M model) in its forward, and the soft tokens replace that output, so the projector must
    start at the scale of the output or the user's tokens begin 25x quieter than every word of the prompt."""
    emb = model.get_input_embeddings()
    rows = emb.weight.shape[0]
    ids = torch.arange(rows) if rows <= sample else torch.linspace(0, rows - 1, steps=sample).long()
    ids = ids.to(emb.weight.device)
    return float(emb(ids).float().pow(2).mean().sqrt())


def backbone_of(model: nn.Module) -> nn.Module:
    """The transformer stack under a causal LM (the module TRL's fused head calls): ``model.base_model``."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.get_base_model()
    return model.base_model


class UserTokenHook:
    """Forward pre-hook (with kwargs) on the backbone; see the module docstring. Stateless apart from the
    model it reads the projector from at call time (PEFT may swap modules after registration)."""

    def __init__(self, owner: nn.Module, placeholder_ids: list[int]) -> None:
        self._owner = [owner]  # a list so nn.Module does not register the owner as a child (no cycle)
        self.placeholder_ids = list(placeholder_ids)
        self.calls = 0  # how often soft tokens were written (tests and sanity checks read it)

    def __call__(
        self, module: nn.Module, args: tuple, kwargs: dict[str, Any]
    ) -> tuple[tuple, dict[str, Any]]:
        user_emb = kwargs.pop("user_emb", None)
        input_ids = kwargs.get("input_ids")
        if input_ids is None and args:
            input_ids, args = args[0], args[1:]
            kwargs["input_ids"] = input_ids
        if user_emb is None:
            if input_ids is not None and bool(
                torch.isin(input_ids, torch.tensor(self.placeholder_ids, device=input_ids.device)).any()
            ):
                raise ValueError(
                    "the prompt holds user placeholders but no user_emb was passed; pass "
                    "user_emb=(B, d_user) to the model, or build inputs_embeds with build_prompt_embeds"
                )
            return args, kwargs
        if input_ids is None:
            raise ValueError("user_emb needs input_ids (with placeholders), not inputs_embeds")
        projector = self._owner[0].user_projector
        kwargs["inputs_embeds"] = embed_with_user_tokens(
            module.get_input_embeddings(), projector, input_ids, user_emb, self.placeholder_ids
        )
        kwargs["input_ids"] = None
        self.calls += 1
        return args, kwargs


def attach_user_tokens(
    model: nn.Module, projector: UserProjector, placeholder_ids: list[int]
) -> UserTokenHook:
    """Put ``projector`` on ``model`` (as ``model.user_projector``) and register the pre-hook on its backbone.

    Call on the plain HF model before wrapping it with PEFT. Idempotent: a second call replaces the hook.
    """
    backbone = backbone_of(model)
    old = getattr(model, HOOK_ATTR, None)
    if old is not None:
        old[1].remove()
    model.user_projector = projector.to(next(model.parameters()).device)
    hook = UserTokenHook(model, placeholder_ids)
    handle = backbone.register_forward_pre_hook(hook, with_kwargs=True)
    object.__setattr__(model, HOOK_ATTR, (hook, handle))
    return hook


def user_token_hook(model: nn.Module) -> UserTokenHook | None:
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.get_base_model()
    entry = getattr(model, HOOK_ATTR, None)
    return entry[0] if entry else None


@torch.no_grad()
def build_prompt_embeds(
    model: nn.Module,
    projector: UserProjector,
    input_ids: torch.Tensor,
    user_vec: torch.Tensor,
    placeholder_ids: list[int] | None = None,
) -> torch.Tensor:
    """(T,) prompt ids + (d_user,) user vector -> (T, H) ``prompt_embeds`` for vLLM / HF generate.

    Exactly the training path: the same ``embed_with_user_tokens`` the pre-hook runs. The placeholder
    ids default to those of the hook attached to ``model``."""
    if input_ids.dim() != 1 or user_vec.dim() != 1:
        raise ValueError(
            f"build_prompt_embeds takes one prompt (T,) and one vector (d_user,), got "
            f"{tuple(input_ids.shape)} and {tuple(user_vec.shape)}; loop or use the batch backends"
        )
    if placeholder_ids is None:
        hook = user_token_hook(model)
        if hook is None:
            raise ValueError(
                "model has no user-token hook; pass placeholder_ids or call attach_user_tokens first"
            )
        placeholder_ids = hook.placeholder_ids
    emb = backbone_of(model).get_input_embeddings()
    device = emb.weight.device
    out = embed_with_user_tokens(
        emb, projector, input_ids.to(device)[None], user_vec.to(device)[None], placeholder_ids
    )
    return out[0]
