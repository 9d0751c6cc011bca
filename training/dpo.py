"""DPO of the SFT generator on preference pairs (TRL DPOTrainer, user vectors through the pre-hook).

    hllm-creator dpo --config training/configs/dpo_tiny.yaml --pairs runs/cot --cot runs/cot \
        --user-vectors runs/encoders --sft runs/sft --out runs/dpo

Both titles of a pair are scored with the same user vector (``UserPreferenceCollator`` repeats it for
the chosen and the rejected half of the batch). The policy is the SFT adapter, trained further; the
reference is the SFT model itself: TRL copies the loaded adapter into a frozen "ref" adapter, so
"adapter disabled" never falls back to the pre-SFT base. The projector is frozen (shared by policy and
reference, so the reference stays the SFT model exactly). Held-out pairs are scored afterwards with our
own ``training.losses.dpo_loss`` (preference accuracy and mean reward margin).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from trl import DPOConfig, DPOTrainer

from creator.config import parse
from training.artefacts import UserHeadsCheckpoints, start_run, summarize, write_model_card
from training.collators import UserPreferenceCollator
from training.completion_logits import compact_on_cpu
from training.trainer_args import TrainerDefaults, warmup_field

logger = logging.getLogger(__name__)


@dataclass
class DPORunConfig(TrainerDefaults, DPOConfig):
    """Options of ``hllm-creator dpo``: TRL's ``DPOConfig`` (``beta``, ``loss_type``, every
    ``TrainingArguments`` field) plus the data paths below."""

    pairs: str = field(default="", metadata={"help": "pairs.parquet or the CoT folder holding it"})
    sft: str = field(default="", metadata={"help": "the --out folder of hllm-creator sft"})
    user_vectors: str = field(default="", metadata={"help": "the same vectors the SFT run used"})
    cot: str | None = field(default=None, metadata={"help": "CoT parquet, to find the pairs' ads and users"})
    catalog: str | None = None
    catalog_format: str = "auto"
    out: str = field(default="runs/dpo", metadata={"help": "artefact folder (checkpoints in OUT/checkpoints)"})
    train_split: str = "train"
    eval_split: str | None = "validation"
    max_rows: int | None = None
    # NLL on the chosen title beside the preference loss (RPO; TRL loss_type ["sigmoid", "sft"]). Without it the
    # tiny model lowered the likelihood of chosen and rejected alike and its titles got worse (docs/generator.md).
    sft_weight: float = field(
        default=0.0, metadata={"help": "weight of the chosen title's NLL (> 0 sets loss_type sigmoid + sft)"}
    )
    resume: bool = field(default=True, metadata={"help": "resume from the last checkpoint in OUT/checkpoints"})
    # project only the titles' positions through the LM head on the CPU too (training.completion_logits)
    completion_only_logits: bool = True
    # TRL's fields with this verb's defaults (TrainerDefaults holds the ones SFT shares)
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate"})
    warmup_steps: float = warmup_field(0.05)

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0 (typical 0.1), got {self.beta}")
        if self.per_device_train_batch_size < 1:
            raise ValueError("per_device_train_batch_size (--batch-size) must be >= 1")
        if self.sft_weight < 0:
            raise ValueError(f"sft_weight must be >= 0 (0 turns the chosen-title NLL off), got {self.sft_weight}")
        if self.sft_weight > 0:
            self.loss_type, self.loss_weights = ["sigmoid", "sft"], [1.0, self.sft_weight]
        super().__post_init__()


class UserDPOTrainer(UserHeadsCheckpoints, DPOTrainer):
    """DPOTrainer whose checkpoints also hold the (frozen) projector."""


def pair_records(gen: Any, data: Any, vectors: dict[str, Any]) -> list[dict[str, Any]]:
    """TRL preference rows: the generator's prompt text, both titles, and the user's vector."""
    return [
        {
            "prompt": gen.prompt_text(data.ads[r["ad_id"]]),
            "chosen": " ".join(str(r["chosen"]).split()),
            "rejected": " ".join(str(r["rejected"]).split()),
            "user_emb": [float(x) for x in vectors[r["user_id"]]],
        }
        for r in data.rows
    ]


@torch.no_grad()
def score_pairs(
    gen: Any, records: list[dict[str, Any]], beta: float, batch_size: int = 16
) -> dict[str, float]:
    """Held-out DPO loss, preference accuracy (policy reward of chosen > rejected) and mean margin.

    Policy = the active "default" adapter, reference = the frozen "ref" adapter (the SFT model)."""
    from trl.trainer.utils import use_adapter

    from training.losses import dpo_loss, sequence_logps

    tok, model = gen.tokenizer, gen.model
    model.eval()
    losses, correct, margins = [], 0, []
    for i in range(0, len(records), batch_size):
        chunk = records[i : i + batch_size]
        seqs, labels = [], []
        for r in chunk:
            p = list(tok(r["prompt"])["input_ids"])
            for title in (r["chosen"], r["rejected"]):
                c = gen.completion_ids(title)
                seqs.append(p + c)
                labels.append([-100] * len(p) + c)
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in seqs])
        lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
        user = torch.tensor([r["user_emb"] for r in chunk for _ in (0, 1)])  # rows: c0, r0, c1, r1, ...
        pol = sequence_logps(model(input_ids=ids, attention_mask=mask, user_emb=user).logits, lab)
        with use_adapter(model, "ref" if "ref" in model.peft_config else None):
            ref = sequence_logps(model(input_ids=ids, attention_mask=mask, user_emb=user).logits, lab)
        loss, rc, rr = dpo_loss(pol[0::2], pol[1::2], ref[0::2], ref[1::2], beta)
        losses.append(float(loss) * len(chunk))
        correct += int((rc > rr).sum())
        margins += (rc - rr).tolist()
    n = len(records)
    return {"pairs": n, "dpo_loss": sum(losses) / n, "accuracy": correct / n, "mean_margin": sum(margins) / n}


def run(run: DPORunConfig) -> dict[str, Any]:
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    from creator.modeling.generator import PersonalizedGenerator
    from creator.modeling.user_vectors import load_user_vectors
    from training.cot_data import load_training_data

    out, catalog = start_run(run, "dpo", ("pairs", "sft", "user_vectors"))
    if run.completion_only_logits:
        compact_on_cpu()
    train = load_training_data(
        run.pairs,
        kind="pairs",
        split=run.train_split,
        catalog=catalog,
        cot_for_lookup=run.cot,
        max_rows=run.max_rows,
    )
    evald = None
    if run.eval_split:
        try:
            evald = load_training_data(
                run.pairs,
                kind="pairs",
                split=run.eval_split,
                catalog=catalog,
                cot_for_lookup=run.cot,
                max_rows=run.max_rows,
            )
        except ValueError:
            logger.info("no %r pairs: no held-out scoring", run.eval_split)
    users = list({**train.users, **(evald.users if evald else {})}.values())
    vectors = load_user_vectors(run.user_vectors, users)
    gen = PersonalizedGenerator.from_pretrained(run.sft, trainable=True)
    gen.projector.requires_grad_(False)
    if len(next(iter(vectors.values()))) != gen.config.d_user:
        raise ValueError(
            f"user vectors have dim {len(next(iter(vectors.values())))} but the SFT model expects "
            f"{gen.config.d_user}; pass the vectors the SFT run used"
        )
    train_ds = Dataset.from_list(pair_records(gen, train, vectors))
    trainer = UserDPOTrainer(
        model=gen.model,
        args=run,
        train_dataset=train_ds,
        processing_class=gen.tokenizer,
        data_collator=UserPreferenceCollator(
            pad_token_id=gen.tokenizer.pad_token_id, max_length=run.max_length
        ),
    )
    metrics: dict[str, Any] = {}
    eval_records = pair_records(gen, evald, vectors) if evald else []
    if eval_records:
        metrics["eval_before"] = score_pairs(gen, eval_records, run.beta)
    last = get_last_checkpoint(run.output_dir) if run.resume and Path(run.output_dir).is_dir() else None
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    metrics.update(summarize(trainer, result, time.perf_counter() - t0, train_ds))
    metrics["resumed_from"] = last
    if eval_records:
        metrics["eval_after"] = score_pairs(gen, eval_records, run.beta)
    gen.config.extra["dpo"] = {"beta": run.beta, "sft": str(run.sft)}
    gen.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_model_card(out, "DPO", run, metrics)
    return metrics


EXAMPLE = """example:
  hllm-creator dpo --config training/configs/dpo_tiny.yaml --pairs runs/cot --cot runs/cot \\
      --user-vectors runs/encoders --sft runs/sft --out runs/dpo
"""


def parse_config(argv: list[str] | None = None) -> DPORunConfig:
    """``DPORunConfig`` from TRL's and the project's defaults, then ``--config YAML``, then the flags."""
    return parse([DPORunConfig], argv, "DPO of the SFT generator on preference pairs (TRL DPOTrainer).", EXAMPLE)[0]


def main(argv: list[str] | None = None) -> int:
    run_config = parse_config(argv)
    m = run(run_config)
    after = m.get("eval_after", {})
    print(
        f"dpo: {m['steps']} steps, loss {m['first_logged_loss']} -> {m['last_logged_loss']}, "
        "held-out accuracy "
        f"{m.get('eval_before', {}).get('accuracy')} -> {after.get('accuracy')}; artefact in {run_config.out}"
    )
    return 0


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
