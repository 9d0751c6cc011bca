"""What the app's shipped YAMLs (``app/configs``) hold: the settings quickstart runs; flags and unknown keys.

Every shipped YAML is parsed with its verb's parser in ``tests/test_configs.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app import generate, quickstart
from creator.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
VERBS = {"generate": generate.parse_config, "quickstart": quickstart.parse_config}
CONFIGS = {"generate": REPO / "app" / "configs" / "generate.yaml",
           "quickstart": REPO / "app" / "configs" / "quickstart.yaml"}


def test_generate_yaml_is_what_quickstart_runs_on_the_sample(monkeypatch, tmp_path):
    """The shipped generate.yaml holds the settings quickstart's generate stage passes (paths aside)."""
    seen = []
    monkeypatch.setattr(generate, "run", lambda config: seen.append(config) or 0)
    qs = quickstart.parse_config(["--config", str(CONFIGS["quickstart"])])
    qs.max_calls = 600  # what quickstart sets for the 300-ad sample
    art = Path("runs/quickstart/artifacts")
    quickstart.generate(art, "examples/office_products_sample", "auto", qs, Path("runs/generate"), fresh=False)
    shipped = VERBS["generate"](["--config", str(CONFIGS["generate"])])
    assert seen == [shipped]


def test_flags_win_and_repeated_train_args_add_up():
    qs = VERBS["quickstart"](["--config", str(CONFIGS["quickstart"]), "--no-serve", "--train-args", "lm=--max-steps 3",
                              "--train_args", "cot=--limit 24", "--clusters", "3"])
    assert qs.no_serve and qs.clusters == 3 and qs.train_args == ["lm=--max-steps 3", "cot=--limit 24"]
    assert qs.top_m == 10 and qs.eval_pairs == 2000  # from the YAML


def test_an_unknown_key_names_the_key_and_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("# hllm-creator generate --config bad.yaml\ncluster: 3\n")
    for parse_argv in VERBS.values():
        with pytest.raises(ConfigError, match=r"bad\.yaml: unknown option\(s\) \['cluster'\]"):
            parse_argv(["--config", str(bad)])
