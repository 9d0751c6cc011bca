"""build-cot end to end: offline teacher, HTTP teacher over a real local server, SIGKILL and resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
from creator.io import load_catalog
from data_pipelines.cot import main
from data_pipelines.cot_builder import CoTBuilder, load_cot_dataset
from data_pipelines.cot_config import CoTConfig
from data_pipelines.teachers.local_server import LocalChatServer
from data_pipelines.teachers.offline import OfflineTeacher

REPO = Path(__file__).resolve().parents[2]
CONTRACT_COLUMNS = {
    "user_profile",
    "original_title",
    "original_description",
    "prompt1",
    "prompt2",
    "response",
    "title_list",
    "item_id_list",
    "user_id",
    "ad_id",
    "split",
    "profile",
    "suitable_user_info",
    "selling_points_used",
    "verdict",
    "teacher",
}
PAIR_COLUMNS = {
    "user_id",
    "ad_id",
    "split",
    "prompt1",
    "prompt2",
    "original_title",
    "chosen",
    "rejected",
    "chosen_score",
    "rejected_score",
}

# A small catalog from other categories than the shared office data (kitchen, electronics, outdoors).
ADS = [
    (
        "k1",
        "Lodge 10.25 Inch Cast Iron Skillet, Pre-Seasoned",
        "Lodge",
        "Pre-seasoned with natural vegetable oil for an easy-release finish. Retains heat for even cooking. "
        "Use on the stove, in the oven, on the grill or over a campfire.",
    ),
    (
        "k2",
        "OXO Good Grips 3-Piece Mixing Bowl Set, White",
        "OXO",
        "Non-slip bottoms keep the bowls steady while you mix. Nesting design saves cabinet space.",
    ),
    (
        "e1",
        "Anker PowerCore 10000mAh Portable Charger, USB-C",
        "Anker",
        "Charges an iPhone up to 2 times on a single charge. Pocket-sized and lightweight for travel.",
    ),
    (
        "e2",
        "Sony WH-1000XM4 Wireless Noise Canceling Headphones, Black",
        "Sony",
        "Industry-leading noise canceling for focused listening. Up to 30 hours of battery life.",
    ),
    (
        "o1",
        "Coleman Sundome 4-Person Tent, Green",
        "Coleman",
        "WeatherTec system with welded floors keeps water out. Sets up in about 10 minutes.",
    ),
    ("o2", "Stanley Classic Legendary Vacuum Bottle, 1.1 qt, Hammertone Green", "Stanley", ""),
    ("o3", "Hydro Flask Wide Mouth Water Bottle", "Hydro Flask", ""),
]
USERS = {
    "u1": ["k1", "k2", "o1", "o2"],
    "u2": ["e1", "e2", "k1"],
    "u3": ["o1", "o2", "o3", "e1", "k2"],
    "u4": ["e2", "o3", "k2"],
}


def write_catalog(folder: Path, ads=ADS, users=USERS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    titles = {a[0]: a[1] for a in ads}
    with open(folder / "ads.jsonl", "w") as fh:
        for ad_id, title, brand, desc in ads:
            fh.write(json.dumps({"ad_id": ad_id, "title": title, "brand": brand, "description": desc}) + "\n")
    with open(folder / "users.jsonl", "w") as fh:
        for uid, items in users.items():
            hist = [{"item_id": i, "title": titles[i], "timestamp": t} for t, i in enumerate(items)]
            fh.write(json.dumps({"user_id": uid, "history": hist}) + "\n")
    return folder


def expected_rows(users=USERS) -> int:
    return sum(len(items) - 1 for items in users.values())


def test_offline_builds_every_row_grounded_and_deterministic(tmp_path, minilm) -> None:
    data = write_catalog(tmp_path / "data")
    catalog = load_catalog(data, "jsonl")
    outs = []
    for run in ("a", "b"):  # two fresh builds (separate caches) must agree exactly
        cfg = CoTConfig(data=str(data), out=str(tmp_path / run), format="jsonl", candidates=3)
        builder = CoTBuilder(cfg, catalog, OfflineTeacher(minilm, known_brands=["Lodge", "Sony"]))
        summary = asyncio.run(builder.run())
        builder.write(Path(cfg.out), summary)
        outs.append(pd.read_parquet(tmp_path / run / "cot.parquet"))
    df = outs[0]
    assert summary["built"] == expected_rows() == len(df) and summary["rejected"] == 0
    assert df["response"].tolist() == outs[1]["response"].tolist()
    assert CONTRACT_COLUMNS <= set(df.columns)
    # user-disjoint split: each user in exactly one split
    assert df.groupby("user_id")["split"].nunique().max() == 1
    # independent re-check with a fresh guard: nothing ungrounded, nothing unchanged
    guard = Guard(GuardConfig(flag_unchanged=True), known_brands=known_brands_from_ads(catalog.ads.values()))
    for row in df.itertuples():
        verdict = guard.check(row.response, catalog.ads[row.ad_id])
        assert verdict.passed, (row.response, verdict.to_dict())
        assert json.loads(row.verdict)["passed"]
        assert len(row.response) <= 120 and len(row.response) - len(row.original_title) <= 40
    # history is oldest-first and never includes the target item's own position
    first = df[(df.user_id == "u1")].sort_values("row_id").iloc[0]
    assert list(first.item_id_list) == ["k1"] and first.ad_id == "k2"
    pairs = pd.read_parquet(tmp_path / "a" / "pairs.parquet")
    assert PAIR_COLUMNS <= set(pairs.columns) and len(pairs) > 0
    assert (pairs.chosen != pairs.rejected).all() and (pairs.chosen_score >= pairs.rejected_score).all()
    ds = load_cot_dataset(tmp_path / "a")
    assert sum(d.num_rows for d in ds.values()) == len(df) and set(ds) <= {"train", "validation", "test"}
    assert set(ds["train"]["split"]) == {"train"} and "response" in ds["train"].column_names
    assert sum(d.num_rows for d in load_cot_dataset(tmp_path / "a", pairs=True).values()) == len(pairs)


def test_http_pipeline_records_failures_and_rejects_with_reason(tmp_path) -> None:
    data = write_catalog(tmp_path / "data")
    faults = [("Original title: Sony WH", ["500"] * 50), ("Original title: Coleman", ["429", "truncated"])]
    with LocalChatServer(faults=faults) as server:
        rc = main(
            [
                "--data",
                str(data),
                "--format",
                "jsonl",
                "--out",
                str(tmp_path / "out"),
                "--teacher",
                "openai",
                "--teacher-model",
                "local",
                "--base-url",
                server.base_url,
                "--api-key",
                "k",
                "--max-retries",
                "2",
                "--timeout-s",
                "2",
                "--candidates",
                "2",
                "--llm-fact-check",
                "--concurrency",
                "3",
            ]
        )
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    built = pd.read_parquet(tmp_path / "out" / "cot.parquet")
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    n_sony_rows = sum(items[1:].count("e2") for items in USERS.values())
    assert summary["built"] + summary["rejected"] == expected_rows() == len(built) + len(rejected)
    assert summary["rejected_by_reason"] == {"teacher_failed": n_sony_rows}
    assert set(rejected.ad_id) == {"e2"} and rejected.detail.str.contains("server_error_500").all()
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    dead = [f for f in failures if not f["ok"]]
    assert len(dead) == summary["requests_failed_after_retries"] == n_sony_rows * 2
    assert all(f["attempts"] == 3 for f in dead)
    recovered = [f for f in failures if f["ok"]]
    assert {k for f in recovered for k in (x["kind"] for x in f["failures"])} == {"rate_limited", "bad_body"}
    assert (built.teacher == "openai:local").all() and "+teacher" not in "".join(built.verdict)
    config = (tmp_path / "out" / "resolved_config.yaml").read_text()
    assert "teacher: openai" in config and "api_key: '***'" in config


def test_sigkill_mid_run_then_rerun_has_no_duplicate_or_missing_rows(tmp_path) -> None:
    # every prompt distinct (no two users share an item), so no request is deduplicated by the cache
    ads = [
        (
            f"a{u}_{j}",
            f"Trailhead Lantern No{u * 5 + j}, {j + 2}-Pack",
            "Trailhead",
            "Bright and sturdy for camping trips. Folds flat for storage.",
        )
        for u in range(24)
        for j in range(5)
    ]
    users = {f"u{u}": [f"a{u}_{j}" for j in range(5)] for u in range(24)}
    data = write_catalog(tmp_path / "data", ads=ads, users=users)
    out = tmp_path / "out"
    n_rows = expected_rows(users)  # 24 users x 4 rows
    total_requests = n_rows * 3  # a profile + 2 candidates per row
    with LocalChatServer(latency_s=0.03) as server:
        args = [
            sys.executable,
            "-m",
            "app.cli",
            "build-cot",
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--teacher",
            "openai",
            "--teacher-model",
            "local",
            "--base-url",
            server.base_url,
            "--api-key",
            "k",
            "--candidates",
            "2",
            "--concurrency",
            "2",
            "--chunk-rows",
            "32",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cache = out / "cache.sqlite"
        deadline = time.time() + 120
        answered = 0
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if cache.exists():
                try:
                    answered = sqlite3.connect(cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
                if answered >= total_requests // 3:
                    break
        assert proc.poll() is None, "the run finished before it could be killed; slow the server down"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / "cot.parquet").exists()  # nothing half-written
        for _ in range(100):  # let the requests the dead client left in flight finish on the server
            if server.in_flight == 0:
                break
            time.sleep(0.05)
        time.sleep(0.1)
        served_before = server.stats["completions"]
        assert main([*args[4:]]) == 0
        served_after = server.stats["completions"] - served_before
    summary = json.loads((out / "summary.json").read_text())
    df = pd.read_parquet(out / "cot.parquet")
    assert len(df) == n_rows == summary["built"] and df["row_id"].is_unique
    assert summary["from_cache"] >= answered > 0
    # the rerun paid only for what the killed run had not stored
    assert summary["sent_to_teacher"] == served_after == total_requests - summary["from_cache"]


def test_cli_help_shows_an_example(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "hllm-creator build-cot --data" in capsys.readouterr().out


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="--teacher-model"):
        CoTConfig(data="d", out="o", teacher="openai")
    with pytest.raises(ValueError, match="sum below 1"):
        CoTConfig(data="d", out="o", validation_fraction=0.5, test_fraction=0.5)


@pytest.mark.shared_data
def test_offline_on_real_office_products_rows_are_all_built_and_grounded(
    amazon_dir, tmp_path, minilm
) -> None:
    catalog = load_catalog(amazon_dir, "amazon2018")
    cfg = CoTConfig(data=str(amazon_dir), out=str(tmp_path / "out"), limit=20, candidates=2)
    brands = known_brands_from_ads(catalog.ads.values())
    builder = CoTBuilder(cfg, catalog, OfflineTeacher(minilm, known_brands=brands))
    summary = asyncio.run(builder.run())
    assert summary["built"] == 20 and summary["rejected"] == 0
    guard = Guard(known_brands=brands)
    strict = {"ungrounded_number", "changed_unit", "ungrounded_model_number", "wrong_brand"}
    for row in builder.rows:
        failures = guard.check(row["response"], catalog.ads[row["ad_id"]]).failures
        assert not [f for f in failures if f.rule in strict], (row["response"], failures)


def test_yaml_config_then_flags(tmp_path) -> None:
    from data_pipelines.cot import parse_config

    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("data: some/catalog\nout: runs/x\ncandidates: 3\nmax_added_chars: 20\n")
    cfg = parse_config(["--config", str(cfg_file), "--candidates", "5"])
    assert (cfg.data, cfg.candidates, cfg.max_added_chars) == ("some/catalog", 5, 20)
    cfg_file.write_text("data: d\nout: o\ncandidate: 3\n")
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['candidate'\\]"):
        parse_config(["--config", str(cfg_file)])


def test_excluded_users_get_no_rows_and_are_counted(tmp_path) -> None:
    """--exclude-users: the users of another catalog (the demo's sample) get no rows, and the summary says how
    many were left out; the others' rows are built as before."""
    from data_pipelines.cot import run

    data = write_catalog(tmp_path / "data")
    other = write_catalog(tmp_path / "other", users={k: USERS[k] for k in ("u1", "u3")})
    summary = run(CoTConfig(data=str(data), out=str(tmp_path / "out"), format="jsonl", candidates=2,
                            exclude_users=[str(other)]))
    df = pd.read_parquet(tmp_path / "out" / "cot.parquet")
    assert summary["users_excluded"] == 2
    assert set(df.user_id) == set(USERS) - {"u1", "u3"}
    assert len(df) == expected_rows({k: v for k, v in USERS.items() if k not in ("u1", "u3")})
