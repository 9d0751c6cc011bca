"""Fluency: how readable a title is, as the mean negative log-likelihood per token under a reference LM.

A title made of the ad's own words in a broken order ("Brush for almost for brush: Sharpie - Sharpie")
passes every fact rule; a language model that has read real text finds it improbable. ``FluencyScorer``
gives each title its mean NLL per token (nats) under a *stock* causal LM — no adapter, no user tokens —
conditioned on the tokenizer's BOS (EOS when it has none) and scoring the title's tokens only.
``FluencyGate`` turns the scores into the guard rule ``disfluent``: a title fails when its NLL is above a
percentile of the catalog's own titles' NLLs (``calibrate``; the 95th by default, see docs/fluency.md).

The reference LM is the stock Gemma 3 270M base when its package is installed (``--fluency-gate auto``),
otherwise the micro LM the project pretrains on the catalog (``hllm-creator pretrain-lm``, ``MODEL/lm``);
its name is carried in every score, verdict and report (``FluencyScorer.name``).

Cost on a CPU: the backbone runs once per batch of titles; the LM head (262k x 640 for Gemma) is applied
only to the title positions, a chunk of rows at a time, so no (B, T, V) logits tensor is ever made.
Scores are cached by text: a title seen twice is scored once.

    >>> percentile_threshold([1.0, 2.0, 3.0, 4.0, 5.0], 75)
    4.0
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creator.records.errors import DataError

logger = logging.getLogger(__name__)

RULE = "disfluent"
DEFAULT_PERCENTILE = 95.0


class FluencyScorer:
    """Mean NLL per token (nats) of texts under a causal LM; ``name`` says which LM (recorded in every output).

    ``batch_size`` texts share one backbone pass (sorted by length, so padding stays small); the head is
    applied to ``chunk`` title positions at a time: memory ~ chunk x vocab floats, never batch x T x vocab.
    Titles are cut to ``max_tokens`` tokens. An empty text (no tokens) scores NaN.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str, batch_size: int = 32, chunk: int = 256,
                 max_tokens: int = 96) -> None:
        if batch_size < 1 or chunk < 1 or max_tokens < 1:
            raise ValueError(f"batch_size, chunk and max_tokens must be >= 1, got {batch_size}, {chunk}, "
                             f"{max_tokens}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size, self.chunk, self.max_tokens = batch_size, chunk, max_tokens
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if prefix is None:
            raise ValueError(f"the tokenizer of {name} has neither a BOS nor an EOS token to condition on")
        self.prefix_id = int(prefix)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else prefix)
        self.cache: dict[str, float] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> FluencyScorer:
        """A named base (``gemma-270m``) or a folder with a causal LM and its tokenizer."""
        from creator.modeling.builders import load_base

        model, tok = load_base(name_or_path)
        label = name_or_path if _is_named(name_or_path) else f"catalog LM ({Path(name_or_path).name})"
        logger.info("fluency reference LM: %s", label)
        return cls(model, tok, name=label, **kwargs)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Mean NLL per token of each text, in order; texts already scored come from the cache."""
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][: self.max_tokens] for t in todo]
            order = sorted(range(len(todo)), key=lambda i: len(ids[i]))
            for s in range(0, len(order), self.batch_size):
                batch = order[s:s + self.batch_size]
                for i, nll in zip(batch, self._mean_nll([ids[i] for i in batch]), strict=True):
                    self.cache[todo[i]] = nll
        return np.array([self.cache[t] for t in texts], dtype=np.float64)

    @torch.inference_mode()
    def _mean_nll(self, seqs: list[list[int]]) -> list[float]:
        rows = [[self.prefix_id, *s] for s in seqs]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        hidden = _backbone(self.model)(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, H)
        scored = mask[:, 1:].bool()  # (B, T-1): position t predicts token t+1, a title token
        h = hidden[:, :-1][scored]  # (N, H)
        targets = ids[:, 1:][scored]  # (N,)
        owner = torch.arange(len(rows))[:, None].expand_as(scored)[scored]  # (N,) row of each position
        nll = torch.empty(len(targets), dtype=torch.float32)
        head = self.model.get_output_embeddings()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        for s in range(0, len(targets), self.chunk):
            part = slice(s, s + self.chunk)
            logits = head(h[part]).float()  # (C, V): the only vocabulary-sized tensor
            if cap:
                logits = torch.tanh(logits / cap) * cap
            nll[part] = torch.logsumexp(logits, -1) - logits.gather(1, targets[part, None])[:, 0]
        sums = torch.zeros(len(rows)).index_add_(0, owner, nll)
        counts = scored.sum(1)
        return [float(sums[b] / counts[b]) if counts[b] else math.nan for b in range(len(rows))]


def _backbone(model: Any) -> Any:
    """The decoder stack without the LM head (``model.model`` for Llama, Qwen2 and Gemma 3)."""
    inner = getattr(model, getattr(model, "base_model_prefix", "model"), None)
    if inner is None or inner is model:
        raise ValueError(f"{type(model).__name__} has no decoder stack to run without its head; "
                         "use a causal LM such as Gemma 3, Llama or Qwen2")
    return inner


def percentile_threshold(nlls: Iterable[float], percentile: float) -> float:
    """The ``percentile`` (0-100, linear interpolation) of the finite NLLs: the gate's threshold."""
    if not 0 < percentile <= 100:
        raise ValueError(f"the fluency percentile must be in (0, 100], got {percentile}; 95 is usual")
    values = np.asarray([v for v in nlls if math.isfinite(v)], dtype=np.float64)
    if not len(values):
        raise ValueError("no finite NLLs to calibrate the fluency gate on; pass the catalog's titles")
    return float(np.percentile(values, percentile))


class UnigramLM:
    """Token frequencies of the catalog's own text under the reference tokenizer (add-``alpha`` smoothing).

    It normalises the LM's NLL for what the title is about (SLOR, Lau et al. 2015; Kann et al. 2018): a title
    of rare model numbers is improbable under any LM, fluent or not; the LM's NLL *minus* the unigram NLL of
    the same tokens keeps only what word order and phrasing cost. Shuffling a title leaves its unigram NLL
    unchanged, so the difference between a title and its shuffle is the LM's alone."""

    def __init__(self, tokenizer: Any, texts: Iterable[str], *, alpha: float = 1.0) -> None:
        counts: dict[int, int] = {}
        for text in texts:
            for i in tokenizer(text, add_special_tokens=False)["input_ids"]:
                counts[i] = counts.get(i, 0) + 1
        self.tokenizer, self.counts, self.alpha = tokenizer, counts, alpha
        self.log_total = math.log(sum(counts.values()) + alpha * len(tokenizer))
        self.max_tokens: int | None = None  # set by FluencyGate to cut texts as the scorer does

    def mean_nll(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_tokens]
            out.append(float(np.mean([self.log_total - math.log(self.counts.get(i, 0) + self.alpha)
                                      for i in ids])) if ids else math.nan)
        return np.array(out, dtype=np.float64)


@dataclass
class FluencyGate:
    """The guard rule ``disfluent``: a title fails when its mean NLL per token is above ``threshold``.

    With a ``unigram`` baseline the gated statistic is the *excess* NLL, the LM's mean NLL per token minus the
    catalog unigram's (= -SLOR), instead of the NLL itself. The ad's own title (``original_title`` in
    ``Guard.check``) is the calibration reference and is never rejected by the gate; its score is still
    recorded."""

    scorer: FluencyScorer
    threshold: float
    percentile: float | None = None
    calibrated_on: int = 0
    unigram: UnigramLM | None = None

    def __post_init__(self) -> None:
        if self.unigram is not None:
            self.unigram.max_tokens = getattr(self.scorer, "max_tokens", None)

    @property
    def reference(self) -> str:
        return self.scorer.name

    @property
    def statistic(self) -> str:
        return "nll" if self.unigram is None else "excess_nll"

    def prefetch(self, texts: Sequence[str]) -> None:
        """Score many texts in batches now, so the per-title checks that follow read the cache."""
        self.scorer.score([t.strip() for t in texts if t and t.strip()])

    def values(self, texts: Sequence[str]) -> np.ndarray:
        """The gated statistic of each text: mean NLL per token, or its excess over the unigram's."""
        nll = self.scorer.score(texts)
        return nll if self.unigram is None else nll - self.unigram.mean_nll(texts)

    def measure(self, text: str) -> tuple[float, dict[str, float]]:
        """(gated statistic, the scores a verdict records) of one text."""
        nll = float(self.scorer.score([text])[0])
        if self.unigram is None:
            return nll, {"fluency_nll": round(nll, 4)}
        excess = nll - float(self.unigram.mean_nll([text])[0])
        return excess, {"fluency_nll": round(nll, 4), "fluency_excess_nll": round(excess, 4)}

    def passes(self, value: float) -> bool:
        return math.isfinite(value) and value <= self.threshold

    def reason(self, value: float) -> str:
        where = f"the {self.percentile:g}th percentile of the catalog's titles" if self.percentile else "the threshold"
        what = "mean NLL" if self.unigram is None else "NLL in excess of the catalog's word frequencies"
        return (f"{what} {value:.2f} nats/token under {self.reference} > {self.threshold:.2f} ({where}): "
                "the words do not read as a sentence")

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "statistic": self.statistic, "threshold": self.threshold,
                "percentile": self.percentile, "calibrated_on": self.calibrated_on}


def calibrate(scorer: FluencyScorer, titles: Sequence[str], percentile: float = DEFAULT_PERCENTILE, *,
              unigram: UnigramLM | None = None) -> FluencyGate:
    """A gate whose threshold is the ``percentile`` of ``titles``' gated statistic (the catalog's original titles):
    their NLL, or with ``unigram`` their excess NLL."""
    titles = [t for t in dict.fromkeys(titles) if t and t.strip()]
    if len(titles) < 20:
        logger.warning("fluency gate calibrated on %d titles only: the p%g threshold is noisy", len(titles),
                       percentile)
    gate = FluencyGate(scorer, math.nan, percentile, len(titles), unigram)
    gate.threshold = percentile_threshold(gate.values(titles), percentile)
    logger.info("fluency gate: %s, %s threshold %.3f nats/token = p%g of %d catalog titles", scorer.name,
                gate.statistic, gate.threshold, percentile, len(titles))
    return gate


def catalog_unigram(scorer: FluencyScorer, ads: Iterable[Any]) -> UnigramLM:
    """The unigram baseline of a catalog: its ads' titles, selling points and descriptions, in the scorer's tokens."""
    return UnigramLM(scorer.tokenizer, [x for a in ads for x in (a.title, *a.selling_points, a.description) if x])


def _is_named(name: str) -> bool:
    from creator.modeling.bases import is_named

    return is_named(name)


def gemma_available(name: str = "gemma-270m") -> bool:
    """True when the named base can be loaded: converted already, or its package installed to convert it."""
    from creator.modeling.bases import DONE, NAMED_BASES, cache_root

    base = NAMED_BASES[name]
    return (cache_root() / base.folder / DONE).exists() or importlib.util.find_spec(base.module) is not None


def resolve_reference(spec: str | None, *, catalog_lm: str | Path | None = None,
                      flag: str = "--fluency-gate") -> str | None:
    """``--fluency-gate`` -> the reference LM to load, or None (no gate).

    ``off``/None: no gate; ``auto``: ``gemma-270m`` when available, else ``catalog_lm`` (the catalog's
    pretrained micro LM) when it is a saved model; anything else: a named base or a model folder."""
    if spec in (None, "", "off", "none"):
        return None
    if spec == "auto":
        if gemma_available():
            return "gemma-270m"
        if catalog_lm is not None and (Path(catalog_lm) / "config.json").exists():
            return str(catalog_lm)
        raise DataError(f"{flag} auto found no reference LM", field=flag.lstrip("-").replace("-", "_"),
                        expected="the gemma-270m package, or a catalog LM saved by pretrain-lm (MODEL/lm)",
                        got=f"neither (looked for {catalog_lm})" if catalog_lm else "neither",
                        fix=f"pip install 'hllm-creator[gemma]', pass {flag} PATH to an LM, or off")
    if _is_named(spec) or (Path(spec) / "config.json").exists():
        return spec
    raise DataError(f"{flag} names no language model", field=flag.lstrip("-").replace("-", "_"),
                    expected="auto, off, gemma-270m or a folder with a causal LM (config.json)",
                    got=repr(spec), fix="train one with hllm-creator pretrain-lm --out DIR and pass DIR")
