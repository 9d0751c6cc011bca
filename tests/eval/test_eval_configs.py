"""The options of ``eval``, ``judge``, ``check`` and ``demo`` (their shipped YAMLs are parsed in
``tests/test_configs.py``): a key no option declares is a clear error; flags win over the YAML; a resolved
config reads back as the same config."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import check, demo
from creator.config import ConfigError, save_resolved
from eval import judge, report

ROOT = Path(__file__).resolve().parents[2]
# verb -> (its shipped YAML, its parser)
VERBS = {
    "eval": (ROOT / "eval" / "configs" / "eval.yaml", report.parse_config),
    "judge": (ROOT / "eval" / "configs" / "judge.yaml", judge.parse_config),
    "check": (ROOT / "app" / "configs" / "check.yaml", check.parse_config),
    "demo": (ROOT / "app" / "configs" / "demo.yaml", demo.parse_config),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_unknown_key_names_the_file_the_key_and_the_options(verb, tmp_path):
    path, parse = VERBS[verb]
    bad = tmp_path / f"{verb}.yaml"
    bad.write_text(path.read_text() + "max_pair: 10\n")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['max_pair'\]") as err:
        parse(["--config", str(bad)])
    assert str(bad) in str(err.value) and "this verb's options are" in str(err.value)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_resolved_config_reads_back_as_the_same_config(verb, tmp_path):
    path, parse = VERBS[verb]
    cfg = parse(["--config", str(path)])
    again = parse(["--config", str(save_resolved(tmp_path / "resolved.yaml", cfg))])
    assert again == cfg


def test_eval_flags_win_and_named_flags_add_to_the_yaml_mapping():
    path, parse = VERBS["eval"]
    cfg = parse(["--config", str(path), "--systems", "more=x.jsonl", "--calls", "more=3", "--bootstrap", "80",
                 "--max_pairs", "0", "--judge", "similarity"])
    assert cfg.systems == {"k32": "runs/generate/creatives.parquet", "more": "x.jsonl"}
    assert cfg.calls == {"more": 3.0} and cfg.bootstrap == 80 and cfg.max_pairs is None
    assert cfg.judge == "similarity" and cfg.segments == {"k32": "runs/generate/segments.parquet"}


def test_eval_named_flags_repeat_and_read_numbers():
    cfg = report.parse_config(["--ads", "cat", "--systems", "a=a.jsonl", "--systems", "b=b.csv", "c=c.parquet",
                               "--calls", "b=2", "--judge-margin", "0.02", "--banned-words", "free", "best"])
    assert cfg.systems == {"a": "a.jsonl", "b": "b.csv", "c": "c.parquet"}
    assert cfg.calls == {"b": 2.0} and cfg.judge_margin == 0.02 and cfg.banned_words == ["free", "best"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ads", "cat", "--systems", "sft"], "--systems expects NAME=VALUE, got 'sft'"),
        (["--ads", "cat", "--systems", "a=x", "--calls", "a=many"], "the value must be a number"),
        (["--ads", "cat"], "no systems: pass --systems NAME=PATH"),
    ],
)
def test_eval_bad_named_values_are_clear_errors(argv, message):
    with pytest.raises(ValueError, match=message):
        report.parse_config(argv)


def test_eval_yaml_may_list_named_values(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("ads: cat\nsystems: [a=a.jsonl, b=b.csv]\ncalls: [a=4]\n")
    cfg = report.parse_config(["--config", str(path)])
    assert cfg.systems == {"a": "a.jsonl", "b": "b.csv"} and cfg.calls == {"a": 4.0}


def test_verbs_report_bad_options_with_exit_status_2(tmp_path, capsys):
    bad = tmp_path / "eval.yaml"
    bad.write_text("ads: cat\nsystems: {a: a.jsonl}\nbootstrapp: 5\n")
    assert report.main(["--config", str(bad)]) == 2
    assert "unknown option(s) ['bootstrapp']" in capsys.readouterr().err
    assert judge.main(["--a", "a.jsonl", "--b", "original", "--data", "cat"]) == 2
    assert "--reward-model DIR and/or --llm-model" in capsys.readouterr().err
    assert demo.main(["--auth", "ana"]) == 2
    assert "--auth must be USER:PASS" in capsys.readouterr().err


def test_flag_names_of_today_still_work():
    cfg = judge.parse_config(["--a", "a", "--b", "original", "--data", "d", "--reward-model", "rm", "--guard",
                              "--llm-api-key-env", "KEY"])
    assert cfg.reward_model == "rm" and cfg.guard and cfg.llm_api_key_env == "KEY"
    cfg = check.parse_config(["--channel", "meta-headline", "--ads", "a", "--titles", "t.csv", "--out", "o",
                              "--quiet"])
    assert cfg.quiet and cfg.format == "auto"
    cfg = demo.parse_config(["--no-train", "--port", "7999", "--auth", "ana:s3cret", "--share"])
    assert cfg.no_train and cfg.port == 7999 and cfg.share and cfg.credentials == ("ana", "s3cret")
