"""Next-item pretraining (HLLM's objective) and match-head training on precomputed item vectors.

The item table ``V`` (n_items, item_dim) is computed once (MiniLM by default, cached on disk);
a training row is (indices of the items before step t, index of the item at step t). The user
vector after step t is pulled towards the item at t+1 against in-batch and sampled negatives
(InfoNCE). The match head then learns (user vector, ad vector) -> logit from 1 positive and
``n`` sampled negatives, and is Platt-calibrated on held-out users.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from creator.modeling.match_head import MatchHead
from creator.modeling.user_encoder import UserEncoder

logger = logging.getLogger(__name__)


@dataclass
class Rows:
    """Next-item rows: ``hist`` (R, L) item indices right-padded with -1, ``target`` (R,), ``user`` (R,)."""

    hist: np.ndarray
    target: np.ndarray
    user: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(self.hist[idx], self.target[idx], self.user[idx])


def make_rows(
    sequences: Sequence[Sequence[int]], max_len: int, *, last_only: bool = False, min_history: int = 1
) -> Rows:
    """Every (history before t, item at t) with t >= ``min_history`` (or only the last t), per user."""
    hist, target, user = [], [], []
    for u, seq in enumerate(sequences):
        steps = [len(seq) - 1] if last_only else range(min_history, len(seq))
        for t in steps:
            if t < min_history:
                continue
            h = list(seq[max(0, t - max_len) : t])
            hist.append(h + [-1] * (max_len - len(h)))
            target.append(seq[t])
            user.append(u)
    return Rows(
        np.asarray(hist, dtype=np.int64).reshape(-1, max_len),
        np.asarray(target, dtype=np.int64),
        np.asarray(user, dtype=np.int64),
    )


def gather_history(V: torch.Tensor, hist: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Item indices (B, L) with -1 padding -> vectors (B, L', D) (zeros at padding) and mask (B, L').

    Columns that are padding in every row are dropped first (L' = the longest history in the batch).
    """
    hist = torch.as_tensor(hist)
    mask = hist >= 0
    width = int(mask.any(0).nonzero().max()) + 1 if mask.any() else 1
    hist, mask = hist[:, :width], mask[:, :width]
    return V[hist.clamp(min=0)] * mask[..., None], mask


def info_nce(
    user_vecs: torch.Tensor,
    pos_vecs: torch.Tensor,
    neg_vecs: torch.Tensor | None,
    scale: float | torch.Tensor,
    pos_ids: torch.Tensor,
    neg_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with in-batch and sampled negatives; a candidate with the positive's own id is masked out.

    Row i scores its positive ``pos_vecs[i]`` against every other row's positive (in-batch) and every
    sampled negative; ``loss_i = -log softmax(scale * [u_i . pos_i, u_i . others...])[0]``, averaged.
    All vectors are expected L2-normalised (so the dot products are cosines).

    Worked example (scale 1): u = [[1, 0], [0, 1]], pos = [[1, 0], [0, 1]], distinct ids, no sampled
    negatives: logits [[1, 0], [0, 1]], so loss = log(1 + e^-1) = 0.31326 for each row.
    """
    # scale before masking: d(scale * -inf)/d(scale) would be NaN
    logits = scale * (user_vecs @ pos_vecs.T)  # (B, B): diagonal = positives
    same = pos_ids[:, None] == pos_ids[None, :]
    eye = torch.eye(len(pos_ids), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))  # a repeat of my positive is not a negative
    if neg_vecs is not None and len(neg_vecs):
        neg = scale * (user_vecs @ neg_vecs.T)  # (B, K)
        if neg_ids is not None:
            neg = neg.masked_fill(pos_ids[:, None] == neg_ids[None, :], float("-inf"))
        logits = torch.cat([logits, neg], dim=1)
    labels = torch.arange(len(pos_ids), device=logits.device)
    return F.cross_entropy(logits, labels)


@dataclass
class FitConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    sampled_negatives: int = 1024
    patience: int = 4
    history_dropout: float = 0.0
    seed: int = 0


class NextItemObjective(torch.nn.Module):
    """The whole InfoNCE step inside one ``forward`` so DDP (``accelerate launch``) sees every parameter."""

    def __init__(self, encoder: UserEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        cand: torch.Tensor,
        n_pos: int,
        pos_ids: torch.Tensor,
        neg_ids: torch.Tensor,
    ) -> torch.Tensor:
        u = self.encoder(x, mask)  # (B, dim)
        cand = self.encoder.item_space(cand)  # (B + K, dim)
        scale = self.encoder.logit_scale.exp().clamp(max=100.0)
        return info_nce(u, cand[:n_pos], cand[n_pos:], scale, pos_ids, neg_ids)


def train_next_item(
    encoder: UserEncoder,
    V: torch.Tensor,
    rows: Rows,
    cfg: FitConfig,
    *,
    validate: Callable[[UserEncoder], float] | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
) -> dict:
    """Train ``encoder`` with InfoNCE; keep the weights with the best ``validate`` score (early stopping).

    Runs under ``accelerate launch`` unchanged: each process takes its own share of every epoch's rows
    and gradients are averaged; on one process (CPU or one GPU) it is a plain loop.
    Returns a history dict: per-epoch mean loss, validation score and seconds, plus the best epoch.
    With ``checkpoint`` (a file path) the state after every epoch is saved there, and a rerun with the
    same file resumes after the last finished epoch with the same random streams (a finished run is
    just reloaded).
    """
    import time

    from accelerate import Accelerator

    acc = Accelerator()
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    objective = NextItemObjective(encoder)
    opt = torch.optim.AdamW(
        [p for p in encoder.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    objective, opt = acc.prepare(objective, opt)
    V = V.to(acc.device)
    steps_per_epoch = math.ceil(len(rows) / (cfg.batch_size * acc.num_processes))
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / max(1, steps_per_epoch)) * 0.5 * (1 + math.cos(math.pi * s / total)),
    )
    log: dict = {"loss": [], "val": [], "epoch_seconds": [], "best_epoch": -1, "best_val": None}
    best_state, best, bad, first, done = None, -math.inf, 0, 0, False
    if checkpoint is not None and Path(checkpoint).exists():
        log, best_state, best, bad, done = _resume(checkpoint, acc.unwrap_model(objective).encoder, opt, sched,
                                                   rng, gen)
        first = len(log["loss"])
    for epoch in range(first, 0 if done else cfg.epochs):
        start = time.perf_counter()
        objective.train()
        order = rng.permutation(len(rows))[acc.process_index :: acc.num_processes]
        losses = _train_epoch(objective, opt, sched, acc, V, rows, order, cfg, gen,
                              progress=progress and acc.is_main_process, desc=f"epoch {epoch}")
        log["loss"].append(float(np.mean(losses)))
        log["epoch_seconds"].append(time.perf_counter() - start)
        score = validate(encoder) if validate else -log["loss"][-1]
        log["val"].append(float(score))
        logger.info(
            "epoch %d: loss %.4f, validation %.4f (%.1fs)",
            epoch,
            log["loss"][-1],
            score,
            log["epoch_seconds"][-1],
        )
        if score > best:
            best, bad, best_state = score, 0, copy.deepcopy(encoder.state_dict())
            log["best_epoch"], log["best_val"] = epoch, float(score)
        else:
            bad += 1
        done = bad >= cfg.patience or epoch == cfg.epochs - 1
        if checkpoint is not None and acc.is_main_process:
            _save(checkpoint, {"encoder": encoder.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                               "rng": rng.bit_generator.state, "gen": gen.get_state(),
                               "torch_rng": torch.get_rng_state(), "log": log, "best_state": best_state,
                               "best": best, "bad": bad, "done": done})
        if bad >= cfg.patience:
            logger.info("early stop after epoch %d (best %d)", epoch, log["best_epoch"])
            break
    if best_state is not None:
        encoder.load_state_dict(best_state)
    acc.wait_for_everyone()
    encoder.to("cpu").eval()
    return log


def _train_epoch(objective: Any, opt: Any, sched: Any, acc: Any, V: torch.Tensor, rows: Rows, order: np.ndarray,
                 cfg: FitConfig, gen: torch.Generator, *, progress: bool, desc: str) -> list[float]:
    """One pass over ``rows`` in ``order``: history dropout and sampled negatives drawn from ``gen``, in that
    order, for each batch; returns the batch losses."""
    n_items = V.shape[0]
    losses = []
    for i in tqdm(range(0, len(order), cfg.batch_size), disable=not progress, desc=desc):
        b = rows.take(order[i : i + cfg.batch_size])
        hist = torch.as_tensor(b.hist)
        if cfg.history_dropout > 0:  # drop random history items (never the whole history)
            drop = torch.rand(hist.shape, generator=gen) < cfg.history_dropout
            keep_one = hist >= 0
            drop &= keep_one.sum(1, keepdim=True) > 1
            hist = hist.masked_fill(drop, -1)
        x, mask = gather_history(V, hist.to(acc.device))
        target = torch.as_tensor(b.target)
        if cfg.sampled_negatives >= n_items:
            neg_ids = torch.arange(n_items)
        else:
            neg_ids = torch.randint(0, n_items, (cfg.sampled_negatives,), generator=gen)
        target, neg_ids = target.to(acc.device), neg_ids.to(acc.device)
        loss = objective(x, mask, V[torch.cat([target, neg_ids])], len(target), target, neg_ids)
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        acc.clip_grad_norm_(objective.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _resume(checkpoint: str | Path, encoder: UserEncoder, opt: Any, sched: Any, rng: np.random.Generator,
            gen: torch.Generator) -> tuple[dict, Any, float, int, bool]:
    """Weights, optimizer, schedule and every random stream as they were after the last finished epoch:
    (log, best_state, best, bad, done)."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    encoder.load_state_dict(ck["encoder"])
    opt.load_state_dict(ck["opt"])
    sched.load_state_dict(ck["sched"])
    rng.bit_generator.state = ck["rng"]
    gen.set_state(ck["gen"])
    torch.set_rng_state(ck["torch_rng"])
    logger.info("resumed from %s after epoch %d", checkpoint, len(ck["log"]["loss"]) - 1)
    return ck["log"], ck["best_state"], ck["best"], ck["bad"], ck["done"]


def _save(checkpoint: str | Path, state: dict[str, Any]) -> None:
    torch.save(state, str(checkpoint) + ".tmp")
    Path(str(checkpoint) + ".tmp").replace(checkpoint)  # atomic: a crash never leaves half a file


@torch.no_grad()
def encode_rows(encoder: UserEncoder, V: torch.Tensor, rows: Rows, batch_size: int = 1024) -> torch.Tensor:
    encoder.eval()
    V = V.to(next(encoder.parameters()).device)
    out = [
        encoder(*gather_history(V, torch.as_tensor(rows.hist[i : i + batch_size], device=V.device))).cpu()
        for i in range(0, len(rows), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, encoder.dim)


def sample_negatives(targets: np.ndarray, n_items: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(R, n) uniform catalog items, never the row's own target."""
    neg = rng.integers(0, n_items - 1, size=(len(targets), n))
    return neg + (neg >= targets[:, None])  # skip the target: draw from n_items - 1 and shift past it


def match_pairs(
    user_vecs: torch.Tensor, V: torch.Tensor, targets: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1 positive + n negatives per row -> (user vecs, ad vecs, labels), each with R * (n + 1) rows."""
    neg = sample_negatives(targets, V.shape[0], n, rng)
    items = torch.as_tensor(np.concatenate([targets[:, None], neg], axis=1))  # (R, n+1)
    labels = torch.zeros(items.shape, dtype=torch.float32)
    labels[:, 0] = 1.0
    users = user_vecs[:, None, :].expand(-1, items.shape[1], -1)
    return users.reshape(-1, user_vecs.shape[1]), V[items.reshape(-1)], labels.reshape(-1)


def train_match_head(
    head: MatchHead,
    user_vecs: torch.Tensor,
    V: torch.Tensor,
    targets: np.ndarray,
    *,
    epochs: int = 8,
    batch_size: int = 512,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """BCE on 1 positive + ``head.config.negatives`` fresh negatives per row and epoch; returns the losses."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in tqdm(range(epochs), disable=not progress, desc="match head"):
        head.train()
        u, a, y = match_pairs(user_vecs, V, targets, head.config.negatives, rng)
        order = torch.as_tensor(rng.permutation(len(y)))
        total = 0.0
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            loss = F.binary_cross_entropy_with_logits(head(u[idx], a[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
    head.eval()
    return losses
