"""The demo's fluency gate (``app.demo_fluency``): calibrated once per catalog on a catalog LM built here, its
threshold cached on disk and read back, and each segment row showing the gate's verdict next to the fact check.
The generator and judge are the doubles of ``tests/demo_doubles.py``; the gate and the guard are real."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from app.demo_catalog import load_sample
from app.demo_fluency import DemoFluency, calibration_titles
from app.demo_session import Constraints, DemoSession
from creator.guard.check import Guard
from tests.demo_doubles import BagGenerator, DoubleParts, PhraseBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AD = "1002"


@pytest.fixture(scope="module")
def catalog():
    return load_sample()


@pytest.fixture(scope="module")
def catalog_lm(catalog, tmp_path_factory):
    """A tiny causal LM and tokenizer saved as a catalog LM folder (``ARTIFACTS/lm``)."""
    from creator.modeling.builders import build_tiny_lm, train_tokenizer

    titles = [a.title for a in catalog.ads.values()]
    tok = train_tokenizer(titles, vocab_size=600)
    path = tmp_path_factory.mktemp("artifacts") / "lm"
    build_tiny_lm(tok, "test", arch="gemma3").save_pretrained(path)
    tok.save_pretrained(path)
    return path


class GatedParts(DoubleParts):
    """The doubles behind a guard with the demo's fluency gate, as ``ArtifactParts.components`` builds it."""

    def __init__(self, fluency: DemoFluency) -> None:
        super().__init__()
        self.fluency = fluency

    def components(self, guard, known_brands, ads=()):
        from creator.pipeline.catalog import Components

        gate = self.fluency.gate(ads)
        return Components(self.user_model, BagGenerator(self.ads), PhraseBackend(self.ads),
                          Guard(guard, known_brands=known_brands, fluency=gate), self.judge)


def test_calibration_titles_are_distinct_sorted_and_a_stable_sample_above_the_limit():
    titles = [f"title {i}" for i in range(50)]
    assert calibration_titles(["b", " a ", "b", "", "c"]) == ["a", "b", "c"]
    sample = calibration_titles(titles, limit=10)
    assert len(sample) == 10 and sample == sorted(sample) and set(sample) <= set(titles)
    assert calibration_titles(titles[::-1], limit=10) == sample  # the catalog's order does not matter


def test_the_gate_is_calibrated_once_per_catalog_and_read_back_after_a_restart(catalog, catalog_lm, tmp_path,
                                                                                  monkeypatch):
    import creator.modeling.fluency as fluency

    ads = list(catalog.ads.values())
    first = DemoFluency(str(catalog_lm), catalog_lm=None, cache_dir=tmp_path / "fluency", percentile=90.0)
    gate = first.gate(ads)
    assert first.gate(ads) is gate  # a second tab: same gate
    values = gate.values(calibration_titles([a.title for a in ads]))
    assert gate.threshold == pytest.approx(np.percentile(values, 90.0))
    assert gate.statistic == "excess_nll" and gate.calibrated_on == len(set(a.title.strip() for a in ads))
    (saved,) = (tmp_path / "fluency").glob("*.json")

    def no_calibration(*args, **kwargs):
        raise AssertionError("the saved threshold should have been read back")

    monkeypatch.setattr(fluency, "calibrate", no_calibration)
    again = DemoFluency(str(catalog_lm), catalog_lm=None, cache_dir=tmp_path / "fluency", percentile=90.0).gate(ads)
    assert again.threshold == gate.threshold and again.calibrated_on == gate.calibrated_on
    # another percentile (or another catalog) is another key: calibrated anew
    with pytest.raises(AssertionError, match="read back"):
        DemoFluency(str(catalog_lm), catalog_lm=None, cache_dir=tmp_path / "fluency", percentile=80.0).gate(ads)
    assert saved.exists()


def test_off_is_no_gate_and_auto_without_any_lm_is_a_clear_error(tmp_path, monkeypatch):
    import creator.modeling.fluency as fluency
    from creator.records.errors import DataError

    assert not DemoFluency("off", catalog_lm=None, cache_dir=tmp_path).enabled
    assert DemoFluency("off", catalog_lm=None, cache_dir=tmp_path).gate([object()]) is None
    monkeypatch.setattr(fluency, "gemma_available", lambda name="gemma-270m": False)
    with pytest.raises(DataError, match="found no reference LM"):
        DemoFluency("auto", catalog_lm=tmp_path / "lm", cache_dir=tmp_path)


def test_demo_config_auto_without_an_lm_runs_without_the_gate_and_says_so(tmp_path, monkeypatch, capsys):
    import creator.modeling.fluency as fluency
    from app.demo import DemoConfig, demo_fluency

    monkeypatch.setattr(fluency, "gemma_available", lambda name="gemma-270m": False)
    assert demo_fluency(DemoConfig(artifacts=str(tmp_path))) is None
    assert "no fluency gate" in capsys.readouterr().err
    assert demo_fluency(DemoConfig(artifacts=str(tmp_path), fluency_gate="off")) is None


def _value(text: str) -> tuple[float, float]:
    got = re.fullmatch(r"reads as text \(([-+][\d.]+) <= ([-+][\d.]+)\)", text)
    assert got, text
    return float(got[1]), float(got[2])


@pytest.mark.parametrize("percentile", [100.0, 0.01])
def test_each_row_shows_the_gates_verdict_next_to_the_fact_check(catalog, catalog_lm, tmp_path, percentile):
    gated = DemoSession(GatedParts(DemoFluency(str(catalog_lm), catalog_lm=None, cache_dir=tmp_path,
                                               percentile=percentile)))
    gated.load(catalog, "sample")
    gated.pick(AD)
    gated.generate(Constraints(clusters=4, candidates=3))
    table = gated.table()
    assert len(table) == 4
    served = [r for r in table if r["source"] == "personalized"]
    fell_back = [r for r in table if r["fluency"] == "candidates did not read as text"]
    for row in served:
        value, limit = _value(row["fluency"])
        assert value <= limit + 1e-2  # a served title passed the gate
        assert math.isfinite(limit)
    for row in fell_back:
        assert row["source"] == "fallback" and "disfluent" in row["fact_check_summary"]
    assert len(served) + len(fell_back) == len(table)  # every row says one or the other here
    if percentile == 0.01:  # the limit is the catalog's most fluent title: the doubles' titles fail it
        assert fell_back
    else:
        assert served

    plain = DemoSession(DoubleParts())
    plain.load(catalog, "sample")
    plain.pick(AD)
    plain.generate(Constraints(clusters=4, candidates=3))
    assert {r["fluency"] for r in plain.table()} == {"-"}  # no gate, no verdict
