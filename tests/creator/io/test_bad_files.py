"""Unreadable files through the CLI: the file type is read from the bytes, never the name, and every
unreadable or empty file gets one line on stderr (file and what it looks like), exit 2, no traceback."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from creator.io.records import write_records
from creator.records.types import Ad

REPO = Path(__file__).resolve().parents[3]
ADS = [Ad(ad_id="1", title="Gel pens, 12 colors", description="Bright colors."),
       Ad(ad_id="2", title="Stapler", description="Staples 20 sheets.")]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("name", ["something.parquet", "ads.parquet", "catalog.dat", "ads.jsonl"])
def test_random_bytes_say_binary_whatever_the_name(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(bytes(range(256)) * 8)
    line = assert_one_line_error(run_cli("data", "inspect", str(bad)), str(bad), "binary data")
    assert "name the file" not in line


def test_empty_file_says_empty_not_unknown_name(tmp_path):
    bad = tmp_path / "something.parquet"
    bad.write_bytes(b"")
    line = assert_one_line_error(run_cli("data", "inspect", str(bad)), str(bad), "file is empty")
    assert "name the file" not in line


def test_gzip_file_is_named_as_compressed(tmp_path):
    bad = tmp_path / "ads.jsonl"
    bad.write_bytes(gzip.compress(b'{"ad_id": "1", "title": "Pen"}\n'))
    assert_one_line_error(run_cli("data", "inspect", str(bad)), str(bad), "gzip", "decompress")


def test_truncated_parquet_is_a_clean_error(tmp_path):
    good = write_records(ADS, tmp_path / "full.parquet")
    bad = tmp_path / "something.parquet"
    bad.write_bytes(good.read_bytes()[:40])  # the PAR1 magic, then nothing usable
    assert_one_line_error(run_cli("data", "inspect", str(bad)), str(bad), "Parquet")


def test_empty_ads_file_in_a_folder_is_an_error(tmp_path):
    (tmp_path / "ads.jsonl").write_text("")
    (tmp_path / "users.jsonl").write_text('{"user_id": "u1", "history": [{"item_id": "1", "title": "Pen"}]}\n')
    assert_one_line_error(run_cli("data", "inspect", str(tmp_path)), "ads.jsonl", "empty")


def test_ads_file_whose_rows_are_all_rejected_is_an_error_even_with_skip(tmp_path):
    (tmp_path / "ads.jsonl").write_text('{"ad_id": "1"}\n{"ad_id": "2"}\n')
    line = assert_one_line_error(run_cli("data", "inspect", str(tmp_path), "--on-error", "skip"),
                                 "no ads could be read", "2 rows rejected")
    assert "title" in line


def test_folder_without_ads_is_an_error_for_inspect(tmp_path):
    (tmp_path / "users.jsonl").write_text('{"user_id": "u1", "history": [{"item_id": "1", "title": "Pen"}]}\n')
    assert_one_line_error(run_cli("data", "inspect", str(tmp_path)), "no ads could be read")


@pytest.mark.parametrize("verb", [["generate", "--model", "MODEL", "--out", "OUT", "--ads", "ADS", "--users", "ADS"],
                                  ["build-cot", "--data", "ADS", "--out", "OUT", "--teacher", "offline"]])
def test_verbs_that_need_ads_refuse_an_empty_catalog(tmp_path, verb):
    ads = tmp_path / "ads.jsonl"
    ads.write_text("\n\n")
    model = tmp_path / "model"
    for part in ("user_model", "generator"):
        (model / part).mkdir(parents=True)
    argv = [{"ADS": str(ads), "MODEL": str(model), "OUT": str(tmp_path / "out")}.get(a, a) for a in verb]
    assert_one_line_error(run_cli(*argv), str(ads), "blank lines")


def test_content_decides_parquet_named_csv_and_jsonl_named_parquet(tmp_path):
    from creator.io import load_catalog

    pq_named_csv = write_records(ADS, tmp_path / "a.parquet").rename(tmp_path / "ads.csv")
    jsonl_named_parquet = write_records(ADS, tmp_path / "b.jsonl").rename(tmp_path / "other.parquet")
    headerless = write_records(ADS, tmp_path / "c.csv").rename(tmp_path / "ads.txt")
    for path in (pq_named_csv, jsonl_named_parquet, headerless):
        assert sorted(load_catalog(path).ads) == ["1", "2"], path
