"""Test doubles for the demo's trained parts, to test the app (UI, state, export) as a unit.

They run behind the real ``creator.pipeline.catalog.generate_for_catalog`` and the real ``creator.guard.check.Guard``;
only the models are stand-ins, and the app says so on screen ("test doubles"). Titles are the ad's own
title plus a fixed, fact-free phrase picked from the sampling seed, so the guard passes them unless a
constraint (length, banned word) says otherwise.
"""

from __future__ import annotations

import socket
import zlib

import numpy as np
import torch

from app.demo_describe import words
from creator.guard.check import Guard, GuardConfig
from creator.records.types import Ad

DIM = 16
PHRASES = ("for your desk", "for everyday work", "for the home office", "for busy days", "for school",
           "for planning ahead")


def _bag(texts: list[str]) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for w in (w for t in texts for w in words(t)):
        v[zlib.crc32(w.encode()) % DIM] += 1.0
    n = np.linalg.norm(v)
    return v / n if n else np.full(DIM, 1 / np.sqrt(DIM), dtype=np.float32)


class BagUserModel:
    """User vector = normalised hashed bag of history words; item vector = the same for a text."""

    def embed_users(self, users, *, batch_size=256, progress=False):
        return np.stack([_bag(u.history_titles) for u in users])

    def embed_items(self, texts):
        return np.stack([_bag([t]) for t in texts])

    def match(self, user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
        return sigmoid_match(user_vecs, ad_vecs)


def sigmoid_match(user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-4.0 * (user_vecs @ ad_vecs.T - 0.25)))  # (K, M)


class BagGenerator:
    """The prompt is the user vector (the backend reads the ad from the request key); open decoding. Records
    each ad it is asked about in ``ads`` (shared with ``PhraseBackend``)."""

    def __init__(self, ads: dict[str, Ad]) -> None:
        self.ads = ads

    def prompt_embeds(self, ad: Ad, user_vec: np.ndarray) -> torch.Tensor:
        self.ads[ad.ad_id] = ad
        return torch.as_tensor(user_vec, dtype=torch.float32)[None, :]  # (1, DIM)

    def grounding(self, ad: Ad, *, max_chars: int | None = None, wide: bool = False) -> None:
        return None


class PhraseBackend:
    """Candidate j of request ``seg|ad`` = ad title + PHRASES[hash(seed, key, j)]."""

    def __init__(self, ads: dict[str, Ad]) -> None:
        self.ads = ads
        self.calls = 0

    def generate(self, requests, sampling):
        self.calls += 1
        out = []
        for r in requests:
            title = self.ads[r.key.split("|", 1)[1]].title
            picks = [zlib.crc32(f"{sampling.seed}|{r.key}|{j}".encode()) % len(PHRASES)
                     for j in range(sampling.n)]
            out.append([f"{title} {PHRASES[p]}" for p in picks])
        return out


class OverlapJudge:
    """Click probability rises with the words a title shares with the user's history."""

    def score(self, users, titles, ads=None):
        return np.array([0.05 + 0.01 * len(set(words(t)) & {w for h in u.history_titles for w in words(h)})
                         for u, t in zip(users, titles, strict=True)])


class DoubleParts:
    """A ``PartsSource`` built from the doubles above (the catalog's ads are given once loaded)."""

    description = "TEST DOUBLES (tests/demo_doubles.py): titles are not from a trained model"

    def __init__(self) -> None:
        self.ads: dict[str, Ad] = {}
        self.user_model = BagUserModel()
        self.judge = OverlapJudge()

    def components(self, guard: GuardConfig, known_brands: list[str], ads=()):
        from creator.pipeline.catalog import Components

        return Components(self.user_model, BagGenerator(self.ads), PhraseBackend(self.ads),
                          Guard(guard, known_brands=known_brands), self.judge)


class RecordingTrainer:
    """Stands in for ``train_missing``: reports progress in two steps and records the fractions."""

    def __init__(self) -> None:
        self.fractions: list[float] = []

    def __call__(self, progress) -> list[str]:
        for frac, desc in ((0.0, "stage 1/2"), (0.5, "stage 2/2"), (1.0, "models ready")):
            progress(frac, desc)
            self.fractions.append(frac)
        return ["stand-in stage"]


def launch_doubles_app(train=None):
    """The demo on 127.0.0.1 on a free port with these doubles: ``(blocks, url)``."""
    from app.demo import build_app

    demo = build_app(DoubleParts(), train=train)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size="20mb")
    return demo, f"http://127.0.0.1:{port}/"
