"""The hllm-creator command: verbs, help with examples, data inspect on fixtures and real data."""

import json
import subprocess
import sys

import pytest

from app.cli import COMMANDS, main


def test_every_verb_has_help_with_an_example(capsys):
    for verb in COMMANDS:
        with pytest.raises(SystemExit) as ex:
            main([verb, "--help"])
        assert ex.value.code == 0
        out = capsys.readouterr().out
        assert "hllm-creator" in out and "example" in out.lower(), verb


def test_unknown_verb_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_inspect_sample_json(sample_dir, capsys):
    assert main(["data", "inspect", str(sample_dir), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["ads"], s["users"], s["rejected_rows"]) == (300, 1000, 0)


def test_bad_file_gives_one_clear_line_not_a_traceback(tmp_path):
    bad = tmp_path / "ads.jsonl"
    bad.write_text('{"ad_id": "1", "title": "ok"}\n{"ad_id": "2", "title": \n')
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "data", "inspect", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}:2: malformed JSON" in proc.stderr


def test_skip_writes_rejects_and_counts(tmp_path, capsys):
    bad = tmp_path / "ads.jsonl"
    bad.write_text('{"ad_id": "1", "title": "ok"}\n{"ad_id": "2"}\n')
    rejects = tmp_path / "rej.jsonl"
    assert main(["data", "inspect", str(bad), "--on-error", "skip", "--rejects", str(rejects)]) == 0
    out = capsys.readouterr().out
    assert "1 rows rejected" in out and str(rejects) in out
    assert json.loads(rejects.read_text())["error"]["field"] == "title"


def test_convert_round_trip(sample_dir, tmp_path, capsys):
    assert main(["data", "convert", str(sample_dir), "--to", "parquet", "--out", str(tmp_path)]) == 0
    assert main(["data", "inspect", str(tmp_path), "--format", "parquet", "--json"]) == 0
    s = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert (s["ads"], s["users"]) == (300, 1000)


@pytest.mark.shared_data
def test_inspect_real_amazon(amazon_dir, capsys):
    assert main(["data", "inspect", str(amazon_dir), "--format", "amazon2018"]) == 0
    out = capsys.readouterr().out
    assert "3,459" in out and "3,231" in out and "21,802" in out


@pytest.mark.shared_data
def test_inspect_real_mind_reports_missing_and_exits_0(mind_dir, capsys):
    assert main(["data", "inspect", str(mind_dir), "--format", "mind"]) == 0
    out = capsys.readouterr().out
    assert "ids referenced but missing:" in out and "in history" in out and "in impressions" in out


def test_inspect_counts_capped_descriptions(tmp_path, capsys):
    path = tmp_path / "ads.jsonl"
    path.write_text(json.dumps({"ad_id": "1", "title": "Pen", "description": "Smooth ink. " * 30_000}) + "\n")
    assert main(["data", "inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["ads"], s["capped_fields"], s["rejected_rows"]) == (1, 1, 0)
    assert main(["data", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "capped fields: 1" in out and "description 360,000 -> " in out
