"""Pairwise judging: Good/Same/Bad with a margin, Adv, symmetry, and the LLM judge's double, swapped asks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from creator.records.errors import DataError
from creator.records.types import Ad, HistoryItem, User
from eval.judge import Judge, LLMJudge, PairwiseResult, compare, read_predictions


class TableJudge:
    """Scores looked up from a dict: isolates compare() from any model."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def score(self, users, titles, ads=None):
        return np.array([self.table[t] for t in titles])


USER = User("u", [HistoryItem("1", "Fountain Pen, Fine Nib")])


def test_compare_counts_by_hand():
    judge = TableJudge(
        {"a1": 0.50, "a2": 0.30, "a3": 0.200, "b1": 0.40, "b2": 0.30, "b3": 0.205, "a4": 0.1, "b4": 0.3}
    )
    res = compare(judge, [USER] * 4, ["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"], margin=0.01)
    # a1-b1 = +.10 good; a2-b2 = 0 same; a3-b3 = -.005 within margin same; a4-b4 = -.2 bad
    assert (res.good, res.same, res.bad, res.n) == (1, 2, 1, 4)
    assert res.adv == pytest.approx(0.0)
    assert res.per_pair == ["good", "same", "same", "bad"]
    assert isinstance(judge, Judge)


def test_adv_matches_hllm_creator_example():
    # the HLLM-Creator README: 353 good, 91 same, 56 bad of 500 -> Adv 59.4%
    res = PairwiseResult.from_verdicts(["good"] * 353 + ["same"] * 91 + ["bad"] * 56)
    assert res.adv == pytest.approx(0.594)


def test_compare_is_symmetric_under_swapping_a_and_b():
    rng = np.random.default_rng(0)
    vals = np.round(rng.random(400), 2)  # coarse: many differences exactly at the margin
    table = {f"t{i}": float(v) for i, v in enumerate(vals)}
    judge = TableJudge(table)
    a, b = [f"t{i}" for i in range(0, 400, 2)], [f"t{i}" for i in range(1, 400, 2)]
    users = [USER] * 200
    ab, ba = compare(judge, users, a, b, margin=0.01), compare(judge, users, b, a, margin=0.01)
    flip = {"good": "bad", "bad": "good", "same": "same"}
    assert ba.per_pair == [flip[v] for v in ab.per_pair]
    assert (ab.good, ab.same, ab.bad) == (ba.bad, ba.same, ba.good)
    assert ab.adv == pytest.approx(-ba.adv)
    assert ab.same > 0 and ab.good > 0 and ab.bad > 0


def test_compare_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one user"):
        compare(TableJudge({}), [USER], ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="margin"):
        compare(TableJudge({"a": 1, "b": 0}), [USER], ["a"], ["b"], margin=-1)


class ScriptedClient:
    """A stand-in for openai.OpenAI: answers from a script and records every prompt."""

    def __init__(self, answers):
        self.answers, self.prompts = list(answers), []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(self, *, model, messages, temperature, max_tokens):
        self.prompts.append(messages[0]["content"])
        msg = SimpleNamespace(content=self.answers.pop(0))
        return SimpleNamespace(choices=[SimpleNamespace(message=msg)])


def test_llm_judge_asks_twice_with_the_order_swapped():
    ad = Ad("1", "Notebook, 100 Sheets", selling_points=["100 sheets"])
    # pair 1: A then (swapped) B -> title_a both times: good
    # pair 2: A then A -> disagreement: same;  pair 3: B then A -> title_b both times: bad
    # pair 4: "Same" then B: same;  pair 5: unreadable then B: same
    client = ScriptedClient(["A", "B", "A", "A", "B", "A", "Same", "B", "hmm", "B"])
    judge = LLMJudge("m", client=client)
    res = compare(judge, [USER] * 5, ["x1", "x2", "x3", "x4", "x5"], ["y1", "y2", "y3", "y4", "y5"], [ad] * 5)
    assert res.per_pair == ["good", "same", "bad", "same", "same"]
    assert judge.unreadable == 1
    first, second = client.prompts[0], client.prompts[1]
    assert "Title A: x1" in first and "Title B: y1" in first
    assert "Title A: y1" in second and "Title B: x1" in second
    assert "Fountain Pen, Fine Nib" in first and "100 sheets" in first


def test_llm_judge_pointwise_score():
    judge = LLMJudge("m", client=ScriptedClient(["73", "I'd say 120", "no idea"]))
    np.testing.assert_allclose(judge.score([USER] * 3, ["a", "b", "c"]), [0.73, 1.0, 0.5])
    assert judge.unreadable == 1


def test_read_predictions_errors_name_the_line(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"user_id": "u", "ad_id": 1, "title": "T"}) + "\n")
    assert read_predictions(good) == {("u", "1"): "T"}
    dup = tmp_path / "dup.jsonl"
    dup.write_text((json.dumps({"user_id": "u", "ad_id": "1", "title": "T"}) + "\n") * 2)
    with pytest.raises(DataError, match=r"dup.jsonl:2.*duplicate"):
        read_predictions(dup)
    missing = tmp_path / "m.jsonl"
    missing.write_text(json.dumps({"user_id": "u", "ad_id": "1"}) + "\n")
    with pytest.raises(DataError, match="title"):
        read_predictions(missing)
