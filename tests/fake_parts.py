"""Small stand-ins for the trained parts, to test the pipeline as a unit, plus a runnable driver.

Users ``g{group}-{i}`` sit near one of three far-apart centres (so k-means with K=3 recovers the groups);
the user model's match is a fixed logistic of (segment vector . ad vector); the generator's prompt is the
user vector and the title length, with open decoding; the guard rejects any title with the word ``bad``;
the judge prefers longer titles. ``fake_components`` puts them together as the pipeline takes them.
``python tests/fake_parts.py OUT`` runs the pipeline with the tiny random Llama behind the HF backend, slowly,
for the SIGKILL-and-resume test.
"""

from __future__ import annotations

import sys
import time
import zlib

import numpy as np
import torch

from creator.backends.base import GenerationRequest, SamplingConfig
from creator.pipeline.catalog import Components, PipelineConfig, generate_for_catalog, write_outputs
from creator.records.types import Ad, GuardFailure, GuardVerdict, HistoryItem, User

DIM = 8
CENTRES = np.eye(3, DIM, dtype=np.float32) * 10


def make_users(per_group: int = 6) -> list[User]:
    users = [User(f"g{g}-{i}", [HistoryItem(f"i{g}{i}", f"item {g} {i}")]) for g in range(3)
             for i in range(per_group)]
    return users + [User("cold-1", [])]  # a cold-start user


def make_ads() -> list[Ad]:
    words = ["blue gel pens", "sticky notes", "stapler for office desk", "black ink refill", "paper", "clips"]
    return [Ad(ad_id=f"a{i}", title=w, selling_points=[] if i == 5 else [f"{w} for work"])
            for i, w in enumerate(words)]


def _rng(key: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(key.encode()))


class FakeUserModel:
    def __init__(self) -> None:
        self.calls = 0

    def embed_users(self, users, *, batch_size=256, progress=False):
        self.calls += 1
        out = []
        for u in users:
            if not u.history:  # cold start: a defined vector (the "learned user token")
                out.append(np.full(DIM, 0.5, dtype=np.float32))
                continue
            group = int(u.user_id[1])
            out.append(CENTRES[group] + _rng(u.user_id).normal(size=DIM).astype(np.float32) * 0.1)
        return np.stack(out).astype(np.float32)

    def embed_items(self, texts):
        return np.stack([_rng(t).normal(size=DIM) for t in texts]).astype(np.float32) * 0.3

    def match(self, user_vecs, ad_vecs):
        return fake_match(user_vecs, ad_vecs)


def fake_match(user_vecs: np.ndarray, ad_vecs: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(user_vecs @ ad_vecs.T)))  # (K, M) probabilities


def fake_prompt_embeds(ad: Ad, user_vec: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.concatenate([user_vec, [len(ad.title)]], dtype=np.float32))[None, :]  # (1, DIM+1)


class FakeGenerator:
    """``prompt_embeds`` as ``fake_prompt_embeds`` (or the function given), recording every user vector it
    is asked for; no grounded vocabulary (open decoding)."""

    def __init__(self, prompt_embeds=None) -> None:
        self._prompt_embeds = prompt_embeds or fake_prompt_embeds
        self.user_vecs: list[np.ndarray] = []

    def prompt_embeds(self, ad: Ad, user_vec: np.ndarray) -> torch.Tensor:
        self.user_vecs.append(np.asarray(user_vec))
        return self._prompt_embeds(ad, user_vec)

    def grounding(self, ad: Ad, *, max_chars=None, wide=False):
        return None


class FakeBackend:
    """Candidate j of request ``k|ad`` is ``"k ad cand j"``; every candidate is bad for ads in ``bad_ads``
    and candidate 0 is bad for every other ad (so the guard always has something to reject)."""

    def __init__(self, bad_ads: tuple[str, ...] = ("a1",)) -> None:
        self.bad_ads = bad_ads
        self.keys: list[str] = []

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[list[str]]:
        out = []
        for r in requests:
            self.keys.append(r.key)
            seg, ad = r.key.split("|")
            out.append([("bad " if ad in self.bad_ads or j == 0 else "") + f"s{seg} {ad} cand" + "!" * j
                        for j in range(sampling.n)])
        return out


class FakeGuard:
    def check(self, title, ad, *, original_title=None):
        bad = "bad" in title.split()
        return GuardVerdict([GuardFailure("banned_word", "bad", "the word 'bad' is banned")] if bad else [])


class FakeJudge:
    def __init__(self) -> None:
        self.users: list[str] = []

    def score(self, users, titles, ads=None):
        self.users.extend(u.user_id for u in users)
        return np.array([len(t) / 100 for t in titles])


def fake_components(*, backend=None, guard=None, judge=None, generator=None, user_model=None) -> Components:
    """The fakes above as the pipeline's parts; pass any part to replace its fake (``judge=None`` keeps the
    ``FakeJudge``: use ``Components(...)`` directly for a run without a judge)."""
    return Components(user_model or FakeUserModel(), generator or FakeGenerator(), backend or FakeBackend(),
                      guard or FakeGuard(), judge or FakeJudge())


# -- driver for the SIGKILL test: the tiny random Llama behind the HF backend, one slow shard at a time ----
class SlowBackend:
    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def generate(self, requests, sampling):
        time.sleep(self.delay)
        return self.inner.generate(requests, sampling)


def tiny_hf_parts(delay: float = 0.0) -> Components:
    from tiny_lm import build_model, build_tokenizer

    from creator.backends.hf import HFBackend

    tok = build_tokenizer()
    model = build_model(tok)
    proj = torch.randn(DIM, 2 * 32, generator=torch.Generator().manual_seed(0)) * 0.1

    def prompt_embeds(ad: Ad, user_vec: np.ndarray) -> torch.Tensor:
        ids = torch.tensor(tok(ad.title, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            soft = (torch.as_tensor(user_vec) @ proj).view(2, 32)  # (2, H) soft user tokens
            return torch.cat([soft, model.get_input_embeddings()(ids)])

    backend = SlowBackend(HFBackend(model, tok, batch_size=4), delay)
    return fake_components(generator=FakeGenerator(prompt_embeds), backend=backend)


def run(out_dir: str, delay: float = 0.0):
    result = generate_for_catalog(make_ads(), make_users(), tiny_hf_parts(delay),
                                  PipelineConfig(clusters=3, match_threshold=0.45, shard_size=2),
                                  SamplingConfig(n=2, seed=5, max_new_tokens=6), out_dir=out_dir)
    write_outputs(result, out_dir, "jsonl", per_user=True)
    return result


if __name__ == "__main__":
    run(sys.argv[1], delay=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
