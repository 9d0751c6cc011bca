"""Next-item pretraining: InfoNCE against hand-computed values, rows, and a short training run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from creator.modeling.user_encoder import UserEncoder, UserEncoderConfig
from training.encoders.next_item import FitConfig, Rows, info_nce, make_rows, sample_negatives, train_next_item


def test_info_nce_hand_computed():
    """u = pos = I (2x2), scale 1, distinct ids: logits [[1, 0], [0, 1]] -> each row log(1 + e^-1) = 0.31326.

    Adding one sampled negative n = [0, 1] (id 9): row 0 logits [1, 0, 0] -> log(1 + 2e^-1) = 0.55144;
    row 1 logits [0, 1, 1] -> log(2 + e^-1) = 0.86199 (the negative ties the positive);
    mean 0.70671.
    With scale 2, row 0 in the first case becomes log(1 + e^-2) = 0.12693.
    """
    eye = torch.eye(2)
    ids = torch.tensor([0, 1])
    assert math.isclose(float(info_nce(eye, eye, None, 1.0, ids)), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    assert math.isclose(float(info_nce(eye, eye, None, 1.0, ids)), 0.31326, abs_tol=1e-5)
    neg = torch.tensor([[0.0, 1.0]])
    got = float(info_nce(eye, eye, neg, 1.0, ids, torch.tensor([9])))
    assert math.isclose(
        got, (math.log(1 + 2 * math.exp(-1)) + math.log(2 + math.exp(-1))) / 2, rel_tol=1e-6
    )
    assert math.isclose(got, 0.70671, abs_tol=1e-5)
    assert math.isclose(float(info_nce(eye, eye, None, 2.0, ids)), math.log(1 + math.exp(-2)), rel_tol=1e-6)


def test_info_nce_masks_false_negatives():
    """A sampled negative or in-batch positive with the row's own item id is not a negative.

    Row 1's sampled negative has id 1 (its own positive) and is masked; rows 0 and 2 share item 5,
    so they do not push each other away. With everything masked away the loss is the plain 2-way case.
    """
    u = torch.eye(3)
    pos = torch.eye(3)
    ids = torch.tensor([5, 1, 5])
    loss = info_nce(u, pos, torch.tensor([[0.0, 1.0, 0.0]]), 1.0, ids, torch.tensor([1]))
    # row 0: candidates pos0 (1), pos1 (0), [pos2 masked], neg (0) -> log(1 + 2e^-1)
    # row 1: pos0 (0), pos1 (1), pos2 (0), [neg masked] -> log(1 + 2e^-1); row 2 like row 0
    expected = math.log(1 + 2 * math.exp(-1))
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_info_nce_gradient_is_finite_with_learnable_scale():
    scale = torch.tensor(2.0, requires_grad=True)
    u = F.normalize(torch.randn(4, 3, requires_grad=True), dim=-1)
    pos = F.normalize(torch.randn(4, 3), dim=-1)
    loss = info_nce(u, pos, pos[:2], scale, torch.tensor([0, 0, 1, 2]), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(scale.grad)


def test_make_rows_every_step_and_last_only():
    rows = make_rows([[3, 4, 5], [7, 8]], max_len=2)
    assert rows.hist.tolist() == [[3, -1], [3, 4], [7, -1]]
    assert rows.target.tolist() == [4, 5, 8]
    assert rows.user.tolist() == [0, 0, 1]
    last = make_rows([[3, 4, 5, 6]], max_len=2, last_only=True)
    assert last.hist.tolist() == [[4, 5]] and last.target.tolist() == [6]


def test_sample_negatives_never_hits_the_target():
    rng = np.random.default_rng(0)
    targets = np.array([0, 3, 4] * 200)
    neg = sample_negatives(targets, 5, 8, rng)
    assert neg.shape == (600, 8)
    assert (neg != targets[:, None]).all() and neg.min() >= 0 and neg.max() <= 4


def _clustered_catalog(n_items: int = 40, dim: int = 16, seed: int = 0):
    """Items in 4 clusters; each user stays in one cluster and walks it in a fixed order."""
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(4, dim, generator=g), dim=-1)
    V = F.normalize(
        centers.repeat_interleave(n_items // 4, 0) + 0.3 * torch.randn(n_items, dim, generator=g), -1
    )
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(80):
        c = rng.integers(0, 4)
        start = rng.integers(0, n_items // 4 - 5)
        seqs.append([int(c * (n_items // 4) + start + k) for k in range(5)])
    return V, seqs


def test_training_lowers_the_loss_and_changes_trainable_params():
    torch.manual_seed(0)
    V, seqs = _clustered_catalog()
    rows = make_rows(seqs, max_len=4)
    enc = UserEncoder(UserEncoderConfig(item_dim=16, hidden=16, layers=1, heads=2, dropout=0.0, max_len=4))
    before = {n: p.detach().clone() for n, p in enc.named_parameters()}
    log = train_next_item(
        enc, V, rows, FitConfig(epochs=6, batch_size=32, lr=3e-3, sampled_negatives=16, patience=10)
    )
    assert log["loss"][-1] < log["loss"][0]
    changed = [n for n, p in enc.named_parameters() if not torch.equal(before[n], p)]
    assert set(changed) == set(before), f"unchanged: {set(before) - set(changed)}"


def test_early_stopping_restores_the_best_epoch():
    torch.manual_seed(0)
    V, seqs = _clustered_catalog()
    rows = make_rows(seqs, max_len=4)
    enc = UserEncoder(UserEncoderConfig(item_dim=16, hidden=16, layers=1, heads=2, dropout=0.0, max_len=4))
    scores = iter([0.5, 0.9, 0.1, 0.2])
    snapshots = []

    def validate(e):
        snapshots.append({k: v.clone() for k, v in e.state_dict().items()})
        return next(scores)

    log = train_next_item(
        enc, V, rows, FitConfig(epochs=4, batch_size=32, sampled_negatives=8, patience=2), validate=validate
    )
    assert log["best_epoch"] == 1 and len(log["loss"]) == 4
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(v, snapshots[1][k])


def test_rows_take():
    rows = Rows(np.arange(6).reshape(3, 2), np.array([1, 2, 3]), np.array([0, 0, 1]))
    assert rows.take(np.array([2])).target.tolist() == [3]


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path):
    """Crash in epoch 2's validation, rerun with the same checkpoint: the same log as one clean run."""
    V, seqs = _clustered_catalog()
    rows = make_rows(seqs, max_len=4)
    cfg = FitConfig(epochs=4, batch_size=32, sampled_negatives=8, patience=10, history_dropout=0.2)

    def fresh() -> UserEncoder:
        torch.manual_seed(0)
        enc_cfg = UserEncoderConfig(item_dim=16, hidden=16, layers=1, heads=2, dropout=0.1, max_len=4)
        return UserEncoder(enc_cfg)

    def crash_at_epoch_2():
        calls = iter(range(10))

        def validate(_e):
            if next(calls) == 2:
                raise RuntimeError("simulated crash")
            return 0.0

        return validate

    clean = fresh()
    log_clean = train_next_item(clean, V, rows, cfg, checkpoint=tmp_path / "clean.pt")
    resumed = fresh()
    with pytest.raises(RuntimeError, match="simulated"):
        train_next_item(resumed, V, rows, cfg, validate=crash_at_epoch_2(), checkpoint=tmp_path / "ck.pt")
    resumed = fresh()  # a new process would start from a fresh model
    log = train_next_item(resumed, V, rows, cfg, validate=lambda e: -1.0, checkpoint=tmp_path / "ck.pt")
    assert len(log["loss"]) == 4 and log["loss"][:2] == pytest.approx(log_clean["loss"][:2])
    assert log["loss"] == pytest.approx(log_clean["loss"], rel=1e-5)
    # a finished run is reloaded, not retrained
    again = fresh()
    assert train_next_item(again, V, rows, cfg, checkpoint=tmp_path / "clean.pt")["loss"] == log_clean["loss"]
    for (k, a), b in zip(again.state_dict().items(), clean.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
