"""``hllm-creator generate`` end to end on small record files, with the trained parts replaced by fakes
(``build_components`` is the one seam): outputs in every format, counts of bad input, resume, the bundle check."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fake_parts import fake_components, make_ads, make_users

import app.generate as generate
from app.cli import main as cli_main


@pytest.fixture
def files(tmp_path):
    ads = [a.to_dict() for a in make_ads()]
    ads.append(dict(ads[0], title="a second row for a0"))  # duplicate id
    users = [u.to_dict() for u in make_users()]
    users.append(users[0])  # duplicate id
    (tmp_path / "ads.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ads) + '{"ad_id": "x"}\n')
    (tmp_path / "users.jsonl").write_text("".join(json.dumps(u) + "\n" for u in users))
    for part in ("user_model", "generator"):  # a bundle's folders (creator.bundle); loading them is faked below
        (tmp_path / "models" / part).mkdir(parents=True)
    return tmp_path


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(generate, "build_components", lambda config, bundle, ads: fake_components())


def argv(files, out, *extra):
    return ["generate", "--ads", str(files / "ads.jsonl"), "--users", str(files / "users.jsonl"),
            "--format", "jsonl", "--model", str(files / "models"), "--out", str(out), "--clusters", "3",
            "--candidates", "3", "--match-threshold", "0.45", "--no-progress", *extra]


def test_generate_writes_compact_and_per_user_outputs_and_counts_bad_input(files, fakes, capsys):
    out = files / "run"
    assert cli_main(argv(files, out, "--output-format", "csv", "--per-user", "--only-users",
                         "g0-0,g1-1,g2-2,cold-1,nobody")) == generate.EXIT_LOSSY == 3
    creatives = pd.read_csv(out / "creatives.csv")
    segments = pd.read_csv(out / "segments.csv")
    per_user = pd.read_csv(out / "user_creatives.csv")
    assert sorted(segments.user_id) == ["cold-1", "g0-0", "g1-1", "g2-2"]
    assert len(per_user) == 4 * 6 and set(creatives.source) <= {"personalized", "fallback", "original"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unknown_users_ids"] == 1
    assert summary["duplicate_ad_ids"] == 1 and summary["duplicate_user_ids"] == 1  # counted once, where read
    assert "duplicate_ids_in_files" not in summary
    assert summary["rejected_rows"] == 3 and summary["cold_start_users"] == 1 and summary["capped_fields"] == 0
    assert (out / "rejects_ads.jsonl").exists() and (out / "resolved_config.yaml").exists()
    assert summary["lossy"] is True
    assert summary["rejects_files"] == [str(out / "rejects_ads.jsonl"), str(out / "rejects_users.jsonl")]
    captured = capsys.readouterr()
    assert "pairs pruned" in captured.out and "rejected: banned_word" in captured.out
    lossy = [line for line in captured.err.splitlines() if "lossy run" in line]
    assert len(lossy) == 1 and "3 input rows rejected" in lossy[0] and str(out / "rejects_ads.jsonl") in lossy[0]


def test_a_clean_run_exits_0_and_says_it_lost_nothing(files, fakes, capsys):
    ads = [json.loads(line) for line in (files / "ads.jsonl").read_text().splitlines()]
    clean = {a["ad_id"]: a for a in ads if "title" in a}  # no missing titles, no duplicate ids
    (files / "ads.jsonl").write_text("".join(json.dumps(a) + "\n" for a in clean.values()))
    users = {json.loads(line)["user_id"]: line for line in (files / "users.jsonl").read_text().splitlines()}
    (files / "users.jsonl").write_text("\n".join(users.values()) + "\n")
    out = files / "run"
    assert cli_main(argv(files, out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lossy"] is False and summary["rejected_rows"] == 0 and "rejects_files" not in summary
    assert "lossy" not in capsys.readouterr().err


def test_on_error_fail_stops_at_the_first_bad_row(files, fakes, capsys):
    assert cli_main(argv(files, files / "run", "--on-error", "fail")) == 2
    assert "duplicate ad_id" in capsys.readouterr().err


def test_rerun_resumes_every_shard_and_writes_the_same_creatives(files, fakes, capsys):
    out = files / "run"
    assert cli_main(argv(files, out, "--output-format", "jsonl", "--shard-size", "2")) == 3  # rows rejected
    first = (out / "creatives.jsonl").read_bytes()
    assert cli_main(argv(files, out, "--output-format", "parquet", "--shard-size", "2")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shards_resumed"] == summary["shards"] > 1
    again = pd.read_parquet(out / "creatives.parquet")
    assert again.title.tolist() == [json.loads(line)["title"] for line in first.decode().splitlines()]
    # other settings in the same folder are refused unless --overwrite
    assert cli_main(argv(files, out, "--shard-size", "3")) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main(argv(files, out, "--shard-size", "3", "--overwrite")) == 3


def test_bad_flags_exit_with_a_message(files, fakes, capsys):
    assert cli_main(argv(files, files / "x", "--match-threshold", "1.5")) == 2
    assert "leave it unset" in capsys.readouterr().err


def test_missing_model_folder_is_a_clear_error_before_loading_data(files, capsys):
    args = argv(files, files / "x")
    args[args.index("--model") + 1] = str(files / "no-such-models")
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "not a complete model bundle" in err and "no user model" in err and "generator" in err
    assert "Fix: train it with hllm-creator quickstart" in err and "hllm-creator train-encoders --out" in err
    assert not (files / "x").exists()  # nothing loaded or written


def test_a_bundle_part_given_by_flag_replaces_the_bundles(files, monkeypatch):
    seen = {}

    def load(config, bundle, ads):
        seen.update(bundle.parts)
        return fake_components()

    monkeypatch.setattr(generate, "build_components", load)
    (files / "other_generator").mkdir()
    assert cli_main(argv(files, files / "run", "--generator", str(files / "other_generator"),
                         "--judge-model", "none")) == 3  # the fixture's bad rows make it lossy
    assert seen == {"user_model": "user_model", "generator": str((files / "other_generator").resolve()),
                    "judge": None}


def test_options_come_from_a_yaml_and_flags_win(files, fakes, tmp_path):
    import yaml

    config = tmp_path / "generate.yaml"
    config.write_text(yaml.safe_dump({"ads": str(files / "ads.jsonl"), "users": str(files / "users.jsonl"),
                                      "format": "jsonl", "model": str(files / "models"), "out": str(files / "run"),
                                      "clusters": 2, "candidates": 3, "match_threshold": 0.45}))
    parsed = generate.parse_config(["--config", str(config), "--clusters", "3", "--no-progress"])
    assert parsed.clusters == 3 and parsed.candidates == 3 and parsed.match_threshold == 0.45 and parsed.no_progress
    assert generate.run(parsed) == 3
    resolved = yaml.safe_load((files / "run" / "resolved_config.yaml").read_text())
    assert resolved["clusters"] == 3 and resolved["model"] == str(files / "models")
    assert generate.parse_config(["--config", str(files / "run" / "resolved_config.yaml")]) == parsed


def test_summary_json_is_written_once_with_the_input_counts(files, fakes, monkeypatch):
    from creator.pipeline import result

    writes = []
    real = result.write_outputs

    def counted(*args, **kwargs):
        writes.append(kwargs.get("summary_extra"))
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "write_outputs", counted)
    assert cli_main(argv(files, files / "run")) == 3
    summary = json.loads((files / "run" / "summary.json").read_text())
    assert len(writes) == 1 and set(writes[0]) <= set(summary) and "segment_titles" in summary
    assert summary["rejected_rows"] == 3 and summary["generator_requests"] > 0


def test_a_huge_description_is_counted_in_the_summary_not_lost(files, fakes):
    ads = [json.loads(line) for line in (files / "ads.jsonl").read_text().splitlines()]
    ads[1]["description"] = "Smooth ink. " * 30_000
    (files / "ads.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ads))
    out = files / "run"
    assert cli_main(argv(files, out, "--output-format", "jsonl")) == 3  # the bad rows of the fixture
    summary = json.loads((out / "summary.json").read_text())
    assert summary["capped_fields"] == 1 and summary["rejected_rows"] == 3
    served = {json.loads(line)["ad_id"] for line in (out / "creatives.jsonl").read_text().splitlines()}
    assert ads[1]["ad_id"] in served


def test_ad_top_k_and_max_calls_reach_the_pipeline_and_the_summary(files, fakes, capsys):
    out = files / "cover"
    # exit 3: the fixture's bad rows are skipped (a lossy run), the selection is what this test reads
    assert cli_main(argv(files, out, "--top-m", "1", "--ad-top-k", "1", "--max-calls", "6")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generator_requests"] == 6 and summary["max_calls"] == 6 and summary["ads_generated_for"] == 6
    assert "segments per ad (personalized)" in capsys.readouterr().out
