"""The README's demo chain end to end on a slice of the bundled sample, with tiny step counts.

Every stage runs for real (training verbs, ``hllm-creator generate``, the evaluation report); only the step
counts are cut (``--train-args``) so the whole chain takes seconds. A rerun must redo nothing.
"""

import json

import pytest

from app.cli import main
from app.demo_artifacts import STAGES

TINY = ["encoders=--epochs 1 --match-epochs 1", "cot=--limit 24", "lm=--max-steps 3",
        "generator=--max-steps 2 --batch-size 4", "reward=--epochs 1"]


@pytest.fixture(scope="module")
def chain(sample_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quickstart")
    data = tmp / "slice"
    assert main(["data", "sample", str(sample_dir), "--users", "40", "--ads", "12", "--out", str(data)]) == 0
    out = tmp / "run"
    argv = ["quickstart", "--base", "micro", "--data", str(data), "--out", str(out), "--no-serve", "--clusters", "3",
            "--top-m", "2", "--candidates", "2", "--eval-pairs", "200"]
    for spec in TINY:
        argv += ["--train-args", spec]
    assert main(argv) == 0
    return out, argv


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_stage_writes_its_output(chain):
    out, _ = chain
    for stage in STAGES:
        assert (out / "artifacts" / stage.folder / ".done").exists(), stage.name
    bundle = json.loads((out / "artifacts" / "bundle.json").read_text())  # the model bundle generate loaded
    assert bundle["parts"] == {"user_model": "encoders/user_model", "generator": "generator",
                               "judge": "reward/reward_model"}
    assert bundle["judge_user_model"] == "encoders/user_model" and bundle["embeddings"] == "embeddings"
    for name in ("creatives.jsonl", "segments.jsonl", "summary.json", "resolved_config.yaml"):
        assert (out / "generate" / name).exists(), name
    from app.generate import parse_config

    resolved = parse_config(["--config", str(out / "generate" / "resolved_config.yaml")])  # reads back as a config
    assert (resolved.model, resolved.clusters, resolved.output_format) == (str(out / "artifacts"), 3, "jsonl")
    for name in ("report.html", "report.md", "report.json", "resolved_config.yaml"):
        assert (out / "report" / name).exists(), name
    report = json.loads((out / "report" / "report.json").read_text())
    assert set(report["systems"]) == {"original", "personalized"}
    assert "judge_score" in report["systems"]["personalized"]  # judged by the trained reward model
    sheet = report["side_by_side"]["personalized"]  # drawn from the users the user model and judge held out
    held = set((out / "report" / "inputs" / "heldout_users.txt").read_text().split())
    assert sheet["users"] == "held-out" and held and {r["user_id"] for r in sheet["pairs"]} <= held
    summary = json.loads((out / "summary.json").read_text())
    assert [s.name for s in STAGES] == summary["trained"]
    assert set(summary["seconds"]) == {"load and validate", "train the missing models",
                                       "generate (hllm-creator generate)", "evaluation report (hllm-creator eval)"}
    assert set(summary["train_seconds"]) == set(summary["train_cpu_seconds"]) == {s.name for s in STAGES}


def test_every_user_of_the_slice_gets_a_title_for_every_ad(chain):
    out, _ = chain
    segments = {r["user_id"]: r["segment_id"] for r in rows(out / "generate" / "segments.jsonl")}
    users = {json.loads(line)["user_id"] for line in (out.parent / "slice" / "users.jsonl").read_text().splitlines()}
    assert set(segments) == users and len(users) == 40
    by_segment: dict[int, dict[str, str]] = {}
    for c in rows(out / "generate" / "creatives.jsonl"):
        by_segment.setdefault(c["segment_id"], {})[c["ad_id"]] = c["title"]
    for seg in set(segments.values()):
        assert len(by_segment[seg]) == 12 and all(t.strip() for t in by_segment[seg].values())
    gen = json.loads((out / "generate" / "summary.json").read_text())
    # top-m 2 (two ads per segment) OR each ad's best segment (--ad-top-k 1, the default), within 2 calls per ad
    assert gen["max_calls"] == 2 * 12 and gen["ads_generated_for"] == 12
    assert 12 <= gen["pairs_generated"] <= 2 * gen["segments"] + 12
    # summary.json says how many ads' segments got different titles; recount it from the creatives
    per_ad: dict[str, list[str]] = {}
    for seg_titles in by_segment.values():
        for ad, t in seg_titles.items():
            per_ad.setdefault(ad, []).append(t)
    multi = [ts for ts in per_ad.values() if len(ts) >= 2]
    st = gen["segment_titles"]
    assert st["ads_with_2plus_segments"] == len(multi)
    assert st["ads_whose_segments_differ"] == pytest.approx(sum(len(set(ts)) > 1 for ts in multi) / len(multi))


def test_a_rerun_trains_and_generates_nothing(chain):
    out, argv = chain
    done = {s.folder: (out / "artifacts" / s.folder / ".done").stat().st_mtime_ns for s in STAGES}
    creatives = (out / "generate" / "creatives.jsonl").stat().st_mtime_ns
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trained"] == [] and summary["reused"] == ["generate", "report"]
    assert done == {s.folder: (out / "artifacts" / s.folder / ".done").stat().st_mtime_ns for s in STAGES}
    assert (out / "generate" / "creatives.jsonl").stat().st_mtime_ns == creatives


def test_unknown_training_stage_is_a_clear_error(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--no-serve", "--train-args", "llm=--max-steps 3"]) == 2
    assert "expected STAGE=FLAGS with STAGE one of" in capsys.readouterr().err


def test_an_interrupted_generation_resumes_its_shards(chain):
    out, argv = chain
    stamps = json.loads((out / "stages.json").read_text())
    del stamps["generate"]  # as if the process died after generating, before writing its outputs
    (out / "stages.json").write_text(json.dumps(stamps))
    (out / "generate" / "creatives.jsonl").unlink()
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trained"] == [] and "generate" not in summary["reused"]
    gen = summary["generate"]
    assert gen["shards"] >= 1 and gen["shards_resumed"] == gen["shards"]  # nothing generated again
    assert (out / "generate" / "creatives.jsonl").exists()


def test_serving_hands_the_demo_a_typed_config(chain, monkeypatch):
    """Without --no-serve the chain ends in ``app.demo.run`` with the trained bundle, never an argument list."""
    import app.demo

    out, argv = chain
    seen = []
    monkeypatch.setattr(app.demo, "run", lambda cfg: seen.append(cfg) or 0)
    assert main([a for a in argv if a != "--no-serve"] + ["--port", "7999"]) == 0
    (cfg,) = seen
    assert isinstance(cfg, app.demo.DemoConfig)
    assert (cfg.artifacts, cfg.no_train, cfg.port) == (str(out / "artifacts"), True, 7999)
    assert cfg.data == argv[argv.index("--data") + 1]  # not the bundled sample: the demo opens on this slice


def test_eval_takes_the_bundle_as_its_judge(chain):
    """``--judge DIR`` (eval) and ``--reward-model DIR`` (judge) accept the model bundle: its judge, sharing the
    bundle's user model; a bundle without a judge is a clear error."""
    import shutil

    from creator.reward.model import RewardModel
    from eval.judge import load_reward_model

    out, _ = chain
    judge = load_reward_model(out / "artifacts")
    assert isinstance(judge, RewardModel) and judge.user_model is not None
    bare = out.parent / "bundle-without-judge"
    shutil.copytree(out / "artifacts", bare, ignore=shutil.ignore_patterns("reward", "lm", "cot"))
    manifest = json.loads((bare / "bundle.json").read_text())
    manifest["parts"]["judge"] = manifest["judge_user_model"] = None
    (bare / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="holds no judge"):
        load_reward_model(bare, flag="--judge")
