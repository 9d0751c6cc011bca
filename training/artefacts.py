"""What every training run leaves behind: checkpoints that include the user heads, metrics, model card.

``UserHeadsCheckpoints`` is a Trainer mixin: PEFT checkpoints hold only the LoRA weights, so the
projector and the auxiliary heads are saved beside them (``user_heads.safetensors``) and restored on
resume; without it a resumed run would silently restart the projector from its initial weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)
HEADS_FILE = "user_heads.safetensors"
HEAD_PREFIXES = ("user_projector.", "profile_projector.", "aux_heads.")


class UserHeadsCheckpoints:
    """Trainer mixin: checkpoints also hold the projector and aux heads (PEFT saves only LoRA weights)."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        from peft import PeftModel
        from safetensors.torch import save_file

        out = Path(output_dir or self.args.output_dir)  # type: ignore[attr-defined]
        model = self.accelerator.unwrap_model(self.model)  # type: ignore[attr-defined]
        if isinstance(model, PeftModel):
            # LoRA only. PEFT's "auto" would also save the whole embedding matrix and LM head whenever the
            # placeholders grew the vocabulary (Gemma: 1.3 GB a checkpoint); those rows are zeros that
            # ``ensure_vocab`` rebuilds exactly on load, and neither matrix trains.
            out.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(out, state_dict=state_dict, save_embedding_layers=False)
            if self.processing_class is not None:  # type: ignore[attr-defined]
                self.processing_class.save_pretrained(out)  # type: ignore[attr-defined]
            torch.save(self.args, out / "training_args.bin")  # type: ignore[attr-defined]
        else:
            super()._save(output_dir, state_dict)  # type: ignore[misc]
        save_file(_heads_state(self.accelerator.unwrap_model(self.model)), str(out / HEADS_FILE))  # type: ignore

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        from safetensors.torch import load_file

        super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
        path = Path(resume_from_checkpoint) / HEADS_FILE
        if path.exists():
            m = self.accelerator.unwrap_model(self.model)  # type: ignore[attr-defined]
            base = m.get_base_model() if hasattr(m, "get_base_model") else m
            missing = base.load_state_dict(load_file(str(path)), strict=False)
            if missing.unexpected_keys:
                raise ValueError(
                    f"checkpoint {path} has heads this model lacks: {missing.unexpected_keys[:4]}"
                )
            logger.info("restored projector and aux heads from %s", path)


def _heads_state(model: Any) -> dict[str, torch.Tensor]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {
        k: v.detach().cpu().contiguous() for k, v in base.state_dict().items() if k.startswith(HEAD_PREFIXES)
    }


def summarize(trainer: Any, result: Any, seconds: float, train_ds: Any) -> dict[str, Any]:
    logs = [h for h in trainer.state.log_history if "loss" in h]
    tokens = int(getattr(trainer, "_total_train_tokens", 0))
    return {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": logs[0]["loss"] if logs else None,
        "last_logged_loss": logs[-1]["loss"] if logs else None,
        "log_history": trainer.state.log_history,
        "train_rows": len(train_ds),
        "train_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 and tokens else None,
        "device": "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()} threads",
    }


def start_run(run: Any, verb: str, required: tuple[str, ...]) -> tuple[Path, Any]:
    """The prologue of sft and dpo: check the required flags, write the resolved config, load the catalog.

    Returns ``(out folder, catalog or None)``."""
    from creator.config import save_resolved

    for name in required:
        if not getattr(run, name):
            raise ValueError(f"--{name.replace('_', '-')} is required (see hllm-creator {verb} --help)")
    out = Path(run.out)
    save_resolved(out / "resolved_config.yaml", run)
    return out, load_catalog_arg(run.catalog, run.catalog_format)


def load_catalog_arg(path: str | None, fmt: str) -> Any:
    if not path:
        return None
    from creator.io import load_catalog

    return load_catalog(path, fmt)


def write_model_card(out: Path, stage: str, run: Any, metrics: dict[str, Any]) -> None:
    lines = [
        f"# hllm-creator generator ({stage})",
        "",
        "A causal LM with a LoRA adapter and a user projector: the user vector becomes "
        f"{getattr(run, 'num_user_tokens', 'k')} soft tokens at the `<u0>..` placeholders of the prompt.",
        "",
        f"- base: `{getattr(run, 'base', '')}`"
        if hasattr(run, "base")
        else f"- from SFT artefact: `{run.sft}`",
        f"- user vectors: `{getattr(run, 'user_vectors', '')}`",
        f"- steps: {metrics.get('steps')}, train loss {metrics.get('train_loss')}",
        f"- tokens/s: {metrics.get('tokens_per_second')} on {metrics.get('device')}",
        "",
        "Load: `PersonalizedGenerator.from_pretrained(this_folder)` (transformers + peft).",
        "Serve: vLLM with `enable_prompt_embeds=True` and a LoRARequest on `adapter/`; build the "
        "embeddings with `PersonalizedGenerator.prompt_embeds`.",
        "",
        "Files: resolved_config.yaml (options), metrics.json (training log).",
    ]
    from creator.modeling.bases import licence_of

    base = getattr(run, "base", None) or _base_of_artefact(getattr(run, "sft", None))
    licence = licence_of(base) if base else None
    if licence:
        lines += ["", f"Licence of the base weights: {licence}. This folder holds only the adapter and the "
                      "projector; the base weights are not redistributed."]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _base_of_artefact(folder: str | None) -> str | None:
    """The ``base`` recorded in a generator artefact's config (DPO starts from an SFT folder)."""
    import json

    cfg = Path(folder) / "generator_config.json" if folder else None
    return json.loads(cfg.read_text()).get("base") if cfg and cfg.exists() else None
