"""The demo's first start: training stages run in order, once, and a failure says which command failed.

The ordering tests swap the real training modules for two stand-in modules written to ``tmp_path`` (the
unit here is ``train_missing``, not the training). ``test_trained_artifacts_generate`` runs the app's
session on real trained artefacts when a folder of them is given with ``HLLM_DEMO_ARTIFACTS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from app import demo_artifacts
from app.demo_artifacts import STAGES, Stage, missing_stages, train_missing, unavailable

STAND_IN = """
from dataclasses import dataclass
from pathlib import Path

@dataclass
class Options:
    data: str = ""
    out: str = ""
    log: str = ""
    max_steps: int = -1

def run(config):
    with Path(config.log).open("a") as fh:
        fh.write(__name__ + "\\n")
    if {code}:
        raise RuntimeError("stand-in failed")
    return config.out
"""


@pytest.fixture()
def stand_in_stages(tmp_path, monkeypatch):
    pkg = tmp_path / "standin_training"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "first.py").write_text(STAND_IN.format(code=0))
    (pkg / "second.py").write_text(STAND_IN.format(code=0))
    (pkg / "broken.py").write_text(STAND_IN.format(code=3))
    monkeypatch.syspath_prepend(str(tmp_path))
    log = tmp_path / "calls.log"

    def stage(name: str, module: str) -> Stage:
        def options(data: str, fmt: str, root: Path) -> dict:
            return {"data": data, "out": str(root / name), "log": str(log)}

        return Stage(name, f"standin_training.{module}", name, "Options:run", options)

    yield stage, log
    for mod in [m for m in sys.modules if m.startswith("standin_training")]:
        del sys.modules[mod]


def test_stages_run_in_order_once_and_report_progress(stand_in_stages, tmp_path, monkeypatch):
    stage, log = stand_in_stages
    monkeypatch.setattr(demo_artifacts, "STAGES", (stage("a", "first"), stage("b", "second")))
    root = tmp_path / "art"
    seen: list[tuple[float, str]] = []
    assert train_missing(root, "data", "jsonl", lambda f, d: seen.append((f, d)),
                         extra_args={"b": ["--max-steps", "5"]}) == ["a", "b"]
    assert log.read_text().split() == ["standin_training.first", "standin_training.second"]
    assert [f for f, _ in seen] == [0.0, 0.5, 1.0] and "(1/2)" in seen[0][1]
    assert (root / "a" / ".done").read_text().startswith("standin_training.first --data data")
    assert (root / "b" / ".done").read_text().rstrip().endswith("--max-steps 5")  # extra flags go last
    assert demo_artifacts.STAGES[1].config("data", "jsonl", root, ["--max-steps", "5"]).max_steps == 5
    assert train_missing(root, "data") == []  # finished stages are not run again
    assert log.read_text().split() == ["standin_training.first", "standin_training.second"]


def test_a_failed_stage_stops_with_its_command_and_stays_unfinished(stand_in_stages, tmp_path, monkeypatch):
    stage, log = stand_in_stages
    monkeypatch.setattr(demo_artifacts, "STAGES", (stage("a", "first"), stage("b", "broken"),
                                                   stage("c", "second")))
    with pytest.raises(RuntimeError, match="stand-in failed"):
        train_missing(tmp_path / "art", "data")
    assert [s.name for s in missing_stages(tmp_path / "art")] == ["b", "c"]


def test_missing_entry_points_are_named_before_anything_runs(tmp_path, monkeypatch):
    ghost = Stage("ghost", "training.no_such_module", "ghost", "Options:run", lambda d, f, r: {})
    monkeypatch.setattr(demo_artifacts, "STAGES", (ghost,))
    assert unavailable([ghost]) == [ghost]
    with pytest.raises(RuntimeError, match="lacks training.no_such_module"):
        train_missing(tmp_path, "data")
    assert not (tmp_path / "ghost").exists()


def test_real_stage_list_covers_the_chain():
    assert [s.module for s in STAGES] == ["training.encoders.train", "data_pipelines.cot", "training.pretrain_lm",
                                          "training.sft", "training.reward.train"]
    assert STAGES[3].options("examples/x", "jsonl", Path("art"))["base"] == str(Path("art") / "lm")


def test_untrained_folder_says_what_to_do(tmp_path):
    pytest.importorskip("creator.pipeline.catalog")
    from app.demo_artifacts import ArtifactParts
    from app.demo_catalog import load_sample
    from app.demo_session import Constraints, DemoSession

    parts = ArtifactParts(tmp_path)
    assert not parts.ready()
    s = DemoSession(parts)
    s.load(load_sample(), "sample")
    s.pick("1002")
    with pytest.raises(RuntimeError, match="not trained yet .*user model and match head.*Train the models"):
        s.generate(Constraints())


@pytest.mark.slow
def test_trained_artifacts_generate():
    root = os.environ.get("HLLM_DEMO_ARTIFACTS")
    if not root or missing_stages(root):
        pytest.skip("set HLLM_DEMO_ARTIFACTS to a folder trained by `hllm-creator demo` or `make demo` (every stage) "
                    "to run the demo session on the real models")
    from app.demo_artifacts import ArtifactParts
    from app.demo_catalog import load_sample
    from app.demo_session import Constraints, DemoSession

    s = DemoSession(ArtifactParts(root))
    s.load(load_sample(), "sample")
    s.pick("1002")
    s.generate(Constraints(clusters=3, candidates=2))
    rows = s.table()
    assert len(rows) == 3 and sum(r["users"] for r in rows) == 1000
    for r in rows:
        assert r["title"].strip() and r["judge"] is not None
        assert (r["source"] == "personalized") == (r["fact_check"] == "passed")


def test_gemma_stages_skip_the_lm_and_install_the_shipped_adapter():
    from app.demo_artifacts import stages_for
    from training.install_generator import SHIPPED, source_dir

    gemma = stages_for("gemma-270m")
    assert [s.module for s in gemma] == ["training.encoders.train", "training.install_generator",
                                         "training.reward.train"]
    options = gemma[1].options("examples/x", "jsonl", Path("art"))
    assert options == {"source": "gemma-270m", "out": str(Path("art") / "generator")}
    assert source_dir("gemma-270m") == SHIPPED["gemma-270m"]  # the adapter is in the repository
    card = (SHIPPED["gemma-270m"] / "README.md").read_text()
    assert "Gemma Terms of Use" in card and "hllm-creator sft" in card
    with pytest.raises(ValueError, match="unknown generator base 'llama'"):
        stages_for("llama")


def test_artifacts_of_another_base_are_refused_with_the_fix(tmp_path):
    import json

    from app.demo_artifacts import ArtefactBaseMismatch, artefact_base

    (tmp_path / "generator").mkdir()
    (tmp_path / "generator" / "generator_config.json").write_text(json.dumps({"base": "base"}))
    assert artefact_base(tmp_path) == "micro"
    with pytest.raises(ArtefactBaseMismatch, match="trained on the micro base, not gemma-270m.*another output"):
        train_missing(tmp_path, "data", base="gemma-270m")
    (tmp_path / "generator" / "generator_config.json").write_text(json.dumps({"base": "gemma-270m"}))
    assert [s.folder for s in missing_stages(tmp_path)] == ["encoders", "generator", "reward"]
