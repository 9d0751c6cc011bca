"""Every shipped YAML parses with its verb's own parser; a bad key is an error that names the key and the file.

The verb is read from the YAML's first line, ``# hllm-creator <verb> --config <path> ...``; ``VERBS`` maps
each verb to a callable ``argv -> config`` (its parser). To cover a new verb's YAML, add one entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from creator.config import ConfigError, parse

REPO = Path(__file__).resolve().parents[1]


def _parser(module: str, cls: str) -> Callable[[list[str]], Any]:
    def parse_argv(argv: list[str]) -> Any:
        import importlib

        return parse([getattr(importlib.import_module(module), cls)], argv)[0]

    return parse_argv


def _verb(module: str) -> Callable[[list[str]], Any]:
    """A verb whose module has its own ``parse_config(argv)`` (custom flag actions, positional paths)."""

    def parse_argv(argv: list[str]) -> Any:
        import importlib

        return importlib.import_module(module).parse_config(argv)

    return parse_argv


VERBS: dict[str, Callable[[list[str]], Any]] = {
    "sft": _parser("training.sft", "SFTRunConfig"),
    "dpo": _parser("training.dpo", "DPORunConfig"),
    "pretrain-lm": _parser("training.pretrain_lm", "PretrainConfig"),
    "train-encoders": _parser("training.encoders.config", "EncodersConfig"),
    "train-reward": _parser("training.reward.config", "RewardTrainConfig"),
    "build-cot": _parser("data_pipelines.cot", "CoTConfig"),
    "generate": _verb("app.generate"),
    "quickstart": _verb("app.quickstart"),
    "demo": _verb("app.demo"),
    "check": _verb("app.check"),
    "eval": _verb("eval.report"),
    "judge": _verb("eval.judge"),
    "data sample": lambda argv: _verb("data_pipelines.inspect")(["sample", *argv]),
}

FIRST_LINE = re.compile(r"^# hllm-creator (\S+(?: [a-z]+)?) --config (\S+)")  # a verb, or a verb and its action


def shipped_configs() -> list[Path]:
    skip = {".venv", "runs", "node_modules"}
    return sorted(
        p for p in REPO.glob("**/configs/*.yaml")
        if not skip & set(p.relative_to(REPO).parts) and not p.name.startswith("accelerate_")
    )


def verb_of(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = FIRST_LINE.match(first)
    assert match, f"{path}: the first line must be '# hllm-creator <verb> --config <path> ...', got {first!r}"
    assert match.group(2) == str(path.relative_to(REPO)), f"{path}: the first line names {match.group(2)}"
    return match.group(1)


def test_configs_are_found():
    names = {p.name for p in shipped_configs()}
    assert {"sft_tiny.yaml", "dpo_tiny.yaml", "pretrain_tiny.yaml", "encoders.yaml", "reward.yaml",
            "build_cot.yaml", "generate.yaml", "quickstart.yaml", "demo.yaml", "check.yaml", "eval.yaml",
            "judge.yaml", "data_sample.yaml"} <= names


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_parses_with_its_verb(path):
    verb = verb_of(path)
    assert verb in VERBS, f"{path} names verb {verb!r}, which has no parser in VERBS ({sorted(VERBS)})"
    config = VERBS[verb](["--config", str(path)])
    assert config is not None


def test_an_unknown_key_names_the_key_and_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("# hllm-creator sft --config bad.yaml\nepochz: 3\n")
    for parse_argv in (VERBS["sft"], VERBS["train-reward"], VERBS["build-cot"]):
        with pytest.raises(ConfigError, match=r"bad\.yaml: unknown option\(s\) \['epochz'\]"):
            parse_argv(["--config", str(bad)])


def test_flags_win_over_the_yaml_and_old_flag_names_still_work():
    path = str(REPO / "training" / "configs" / "sft_tiny.yaml")
    cfg = VERBS["sft"](["--config", path, "--epochs", "3", "--batch-size", "4", "--grad-accum", "2",
                        "--warmup-ratio", "0.1", "--lr-scheduler", "linear", "--max_steps", "7",
                        "--weight-decay", "0.01", "--optim", "adamw_torch", "--max-grad-norm", "0.5"])
    assert (cfg.num_train_epochs, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == (3, 4, 2)
    assert (cfg.warmup_steps, cfg.lr_scheduler_type.value, cfg.max_steps) == (0.1, "linear", 7)
    assert (cfg.weight_decay, cfg.optim.value, cfg.max_grad_norm) == (0.01, "adamw_torch", 0.5)
    assert cfg.learning_rate == 0.001 and cfg.per_device_eval_batch_size == 4  # from the YAML; eval follows train


def test_trl_defaults_the_project_keeps_off():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated gradient_checkpointing on our calls
        for verb in ("sft", "dpo"):
            cfg = VERBS[verb]([])
            assert cfg.activation_checkpointing is False and cfg.gradient_checkpointing is False
            assert cfg.output_dir.endswith("checkpoints") and cfg.seed == 0 and cfg.save_total_limit == 2
            import torch

            assert cfg.use_cpu == (not torch.cuda.is_available())
            assert cfg.bf16 == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def test_a_resolved_trl_config_reads_back_as_the_same_options(tmp_path):
    import json
    import warnings

    from creator.config import save_resolved

    for verb, name in (("sft", "sft_tiny.yaml"), ("dpo", "dpo_tiny.yaml")):
        cfg = VERBS[verb](["--config", str(REPO / "training" / "configs" / name), "--out", str(tmp_path / verb)])
        path = save_resolved(tmp_path / verb / "resolved_config.yaml", cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # no deprecated option comes back set
            back = VERBS[verb](["--config", str(path)])
        assert back.pad_token is None and back.hub_token is None
        assert json.loads(back.to_json_string()) == json.loads(cfg.to_json_string())


def test_run_verb_turns_a_bad_option_into_one_line_and_status_2(capsys):
    """Every verb's ``main`` is ``run_verb(parse_config, run, argv)``: bad option -> ``error:`` line, exit 2,
    nothing run; ``run``'s int is the exit status, anything else is 0."""
    from creator.config import run_verb

    ran = []

    def parse_config(argv):
        if argv and argv[0] == "--bad":
            raise ValueError("--bad is not an option; e.g. --good")
        return list(argv or [])

    assert run_verb(parse_config, lambda c: ran.append(c) or 3, ["--good"]) == 3
    assert run_verb(parse_config, lambda c: {"metrics": 1}, []) == 0
    assert run_verb(parse_config, lambda c: ran.append("never"), ["--bad"]) == 2
    assert ran == [["--good"]]
    assert capsys.readouterr().err == "error: --bad is not an option; e.g. --good\n"
