"""The reward model's epoch loop: BCE on click rows, a weight average, validation, checkpoints to resume.

Used twice by ``training.reward.train`` (``hllm-creator train-reward``): once on the training users with
the validation users choosing the epoch, and, with ``refit: true``, once more on training + validation
users for the number of epochs that first run chose (no validation then: the last weights are kept).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creator.reward.net import RewardNet
from training.reward.evaluate import RowTensors

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What one run of the epoch loop kept."""

    state: dict[str, torch.Tensor]  # the kept weights (best on validation, or the last ones)
    best_auc: float  # best validation AUC; nan without validation
    best_epoch: int  # the epoch those weights are from (1-based)
    seconds: float


def ema_update(avg: dict[str, torch.Tensor], state: dict[str, torch.Tensor], decay: float, step: int) -> None:
    """avg <- d * avg + (1 - d) * state with d = min(decay, (1 + step) / (10 + step)), in place.

    The decay ramps up over the first steps so the random init does not linger in the average.
    Hand check: avg 0, state 1, decay 0.9, step 1 -> d = 2/11, avg = 9/11 = 0.8182; at step 100
    d = 0.9 (101/110 > 0.9), avg 0 -> 0.1. Integer buffers are copied.
    """
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for k, v in state.items():
            if v.dtype.is_floating_point:
                avg[k].mul_(d).add_(v, alpha=1 - d)
            else:
                avg[k].copy_(v)


@dataclass
class LoopState:
    """What the epoch loop carries from epoch to epoch, and what its checkpoint holds."""

    ema: dict[str, torch.Tensor] | None  # the averaged weights (validated and kept when ema_decay > 0)
    start_epoch: int = 0
    best_auc: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    finished: bool = False

    def restore(self, ckpt: Path, net: RewardNet, opt: Any, rng: np.random.Generator) -> None:
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        self.ema = state.get("ema", self.ema)
        opt.load_state_dict(state["opt"])
        self.start_epoch, self.best_auc, self.best_state, self.bad_epochs = (
            state["epoch"] + 1,
            state["best_auc"],
            state["best_state"],
            state["bad_epochs"],
        )
        self.best_epoch, self.finished = state.get("best_epoch", 0), state.get("finished", False)
        rng.bit_generator.state = state["rng"]
        logger.info("resumed from %s at epoch %d", ckpt, self.start_epoch)

    def save(self, ckpt: Path, net: RewardNet, opt: Any, epoch: int, rng: np.random.Generator) -> None:
        torch.save(
            {
                "net": net.state_dict(),
                "ema": self.ema,
                "opt": opt.state_dict(),
                "epoch": epoch,
                "best_auc": self.best_auc,
                "best_state": self.best_state,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "finished": self.finished,
                "rng": rng.bit_generator.state,
            },
            ckpt,
        )


def fit(
    cfg: Any,
    net: RewardNet,
    train_rows: Callable[[], RowTensors],
    n_rows: int,
    rng: np.random.Generator,
    *,
    epochs: int,
    val: RowTensors | None,
    ckpt: Path,
    log_path: Path,
    resume: bool = False,
) -> FitResult:
    """Train ``net`` for up to ``epochs`` (fresh rows from ``train_rows()`` each epoch).

    ``cfg``: a ``RewardTrainConfig`` (lr, weight decay, batch size, patience, ema_decay; the cosine
    learning-rate schedule always spans ``cfg.epochs``, so a shorter refit follows the same curve as
    the run that chose its length). With ``val``, early stopping on validation AUC keeps the best
    weights; without, the weights after the last epoch are kept. ``n_rows``: rows per epoch (for the
    schedule). The state is saved to ``ckpt`` after every epoch; ``resume`` continues from it.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loop = LoopState(ema={k: v.detach().clone() for k, v in net.state_dict().items()} if cfg.ema_decay else None)
    if resume and ckpt.exists():
        loop.restore(ckpt, net, opt, rng)
    steps_per_epoch = max(1, -(-n_rows // cfg.batch_size))
    done = loop.start_epoch * steps_per_epoch
    for group in opt.param_groups:
        group["lr"] = cfg.lr  # the schedule's base; a loaded optimizer state holds the decayed value
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda step: 0.5 * (1 + math.cos(math.pi * min((step + done) / (steps_per_epoch * cfg.epochs), 1.0))),
    )
    t0 = time.perf_counter()
    step = done
    with open(log_path, "a") as log:
        for epoch in range(loop.start_epoch, epochs):
            if loop.finished:
                break
            tr = train_rows()
            losses, step = train_epoch(cfg, net, opt, sched, loss_fn, tr, loop.ema, step, f"epoch {epoch + 1}/{epochs}")
            entry = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "rows": len(tr),
                     "seconds": time.perf_counter() - t0}
            end_epoch(cfg, net, loop, entry, val, log)
            loop.finished = epoch + 1 == epochs or (val is not None and loop.bad_epochs >= cfg.patience)
            if loop.finished and val is not None and loop.bad_epochs >= cfg.patience:
                logger.info("no validation gain for %d epochs: stopping", loop.bad_epochs)
            loop.save(ckpt, net, opt, epoch, rng)
    best_state = loop.best_state
    if best_state is None:  # nothing trained (epochs 0): keep the initial weights
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return FitResult(best_state, loop.best_auc if val is not None else float("nan"), loop.best_epoch,
                     time.perf_counter() - t0)


def train_epoch(cfg: Any, net: RewardNet, opt: Any, sched: Any, loss_fn: Any, tr: RowTensors,
                ema: dict[str, torch.Tensor] | None, step: int, desc: str) -> tuple[list[float], int]:
    """One pass over ``tr`` in ``cfg.batch_size`` batches (the averaged weights follow each step):
    (the batch losses, the global step after it)."""
    from tqdm.auto import tqdm

    net.train()
    order = tr.group_order()
    losses = []
    for s in tqdm(range(0, len(tr), cfg.batch_size), desc=desc, leave=False):
        idx = order[s : s + cfg.batch_size]
        loss = _loss(cfg, loss_fn, net(**tr.batch(idx)), tr, idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
        if ema is not None:
            ema_update(ema, net.state_dict(), cfg.ema_decay, step)
    return losses, step


def end_epoch(cfg: Any, net: RewardNet, loop: LoopState, entry: dict[str, Any], val: RowTensors | None,
              log: Any) -> None:
    """Validate (the averaged weights when there are some), log the epoch, keep the weights if they improved."""
    from creator.reward.metrics import auc

    live = None
    if loop.ema is not None:  # validate (or keep) the averaged weights
        live = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict(loop.ema)
    if val is not None:
        entry["val_auc"] = auc(val.rows.label, val.logits(net)) or 0.0
        logger.info(
            "epoch %d: loss %.4f, validation AUC %.4f", entry["epoch"], entry["train_loss"], entry["val_auc"]
        )
        improved = entry["val_auc"] > loop.best_auc
        loop.best_auc = max(loop.best_auc, entry["val_auc"])
    else:
        logger.info("epoch %d: loss %.4f (no validation: the last one is kept)", entry["epoch"], entry["train_loss"])
        improved = True
    log.write(json.dumps(entry) + "\n")
    log.flush()
    if improved:
        loop.best_state, loop.best_epoch, loop.bad_epochs = (
            {k: v.detach().clone() for k, v in net.state_dict().items()},
            entry["epoch"],
            0,
        )
    else:
        loop.bad_epochs += 1
    if live is not None:
        net.load_state_dict(live)


def _loss(cfg: Any, loss_fn: Any, z: torch.Tensor, tr: RowTensors, idx: torch.Tensor) -> torch.Tensor:
    """The click loss; with ``corruption_loss: pairwise`` the corrupted rows leave it and each adds
    ``corruption_weight * softplus(z_corrupted - z_real)`` against its real title's row in the same batch."""
    y = tr.label[idx]
    real = tr.real_row[idx]
    if getattr(cfg, "corruption_loss", "label") != "pairwise" or not bool((real >= 0).any()):
        return loss_fn(z, y)
    own = real < 0
    click = loss_fn(z[own], y[own])
    where = torch.full((len(tr),), -1, dtype=torch.long)
    where[idx] = torch.arange(len(idx))
    at = where[real[~own]]  # batch position of each corrupted row's real title (-1: in another batch)
    zc = z[~own][at >= 0]
    if not len(zc):
        return click
    return click + cfg.corruption_weight * torch.nn.functional.softplus(zc - z[at[at >= 0]]).mean()
