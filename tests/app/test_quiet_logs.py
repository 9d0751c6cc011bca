"""A CLI run's stderr carries no library noise: faiss's CPU-feature probe lines and third-party
FutureWarnings are filtered at the CLI entry; the project's own calls use current names."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ADS = REPO / "examples" / "office_products_sample" / "ads.jsonl"

# What a generate or demo run does after the CLI has started: faiss is imported for k-means, and TRL reads
# a model's deprecated ``is_gradient_checkpointing`` (a FutureWarning inside transformers).
NOISY = """
import faiss
from transformers import LlamaConfig, LlamaForCausalLM
cfg = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2)
LlamaForCausalLM(cfg).is_gradient_checkpointing
"""
VIA_CLI = "import sys; from app.cli import main; rc = main(['data', 'inspect', sys.argv[1]])\n" + NOISY + \
    "sys.exit(rc)"
WITHOUT_FILTERS = "import logging, sys; logging.basicConfig(level=logging.INFO)\n" + NOISY


def run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONWARNINGS": ""}
    return subprocess.run([sys.executable, "-c", code, str(SAMPLE_ADS)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_cli_stderr_has_no_faiss_probe_or_third_party_future_warnings():
    plain = run(WITHOUT_FILTERS)
    assert plain.returncode == 0, plain.stderr
    assert "FutureWarning" in plain.stderr  # the noise is real without the CLI's filters
    probe_noisy = "swigfaiss_avx" in plain.stderr  # absent where faiss's first build loads (no fallback)
    cli = run(VIA_CLI)
    assert cli.returncode == 0, cli.stderr
    assert "300" in cli.stdout  # the verb itself ran and printed its summary
    assert "FutureWarning" not in cli.stderr
    assert "swigfaiss" not in cli.stderr and "Could not load library" not in cli.stderr
    assert "Traceback" not in cli.stderr
    if probe_noisy:
        assert "Could not load library" in plain.stderr


def test_a_future_warning_from_the_project_itself_still_shows():
    from app.cli import quiet_third_party_noise

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_third_party_noise()
        warnings.warn_explicit("old name", FutureWarning, "creator/x.py", 1, module="creator.x")
        warnings.warn_explicit("old name", FutureWarning, "transformers/x.py", 1, module="transformers.x")
    assert [str(w.message) for w in seen] == ["old name"] and seen[0].filename == "creator/x.py"


def test_training_configs_use_current_names():
    from training.dpo import DPORunConfig
    from training.sft import SFTRunConfig

    for cls in (SFTRunConfig, DPORunConfig):
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            cfg = cls(output_dir="unused", use_cpu=True)
        assert not cfg.activation_checkpointing and not cfg.gradient_checkpointing
    for path in (REPO / "training").glob("*.py"):
        assert "gradient_checkpointing=" not in path.read_text(), path
