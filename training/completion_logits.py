"""Logits only where the loss is: make TRL's fused LM head score completion positions only on the CPU too.

TRL 1.16 replaces the causal LM's forward with a fused LM head (``trl.trainer.utils.add_fused_lm_head``).
On CUDA/XPU it projects only the positions whose label is not -100; everywhere else it projects *every*
position and masks afterwards (the comment there: static tile shapes for devices that recompile, e.g.
Neuron). A CPU does not recompile, and for a 262k-token vocabulary (Gemma 3) the head is most of a step:
a prompt of 80 tokens and a title of 20 cost 5x the head FLOPs they need. ``compact_on_cpu()`` makes the
head's choice ("compact", i.e. score ``hidden[mask]``) true on the CPU; the kernel that scores the rows is
unchanged (it keeps its own CPU tile path), so the loss and its gradient are the same numbers, only fewer
rows are projected. ``tests/creator/modeling/test_gemma_base.py`` checks the loss against full logits.

Why a patch and not our own head: the fused forward also serves TRL's DPO (policy and reference log-probs)
and its metrics; re-implementing it would copy TRL's trainer internals, which the house style forbids. The
patch is one module-level function, applied idempotently, and checked against the installed TRL: if TRL
moves the switch, ``compact_on_cpu`` says so and training runs as before (full logits), never wrong.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

_MARK = "_hllm_compact_on_cpu"


def compact_on_cpu() -> bool:
    """Score only label positions on the CPU in TRL's fused LM head. True when active (idempotent)."""
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:  # pragma: no cover - TRL is a core dependency
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        logger.warning("this TRL has no fused-head switch (_use_triton); the LM head projects every position")
        return False
    if getattr(original, _MARK, False):
        return True

    def compact(device):  # noqa: ANN001, ANN202 - TRL's signature
        return device.type == "cpu" or original(device)

    setattr(compact, _MARK, True)
    trl_utils._use_triton = compact
    return True
