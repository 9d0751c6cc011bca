"""LoRA SFT of the personalized generator with HLLM-Creator's auxiliary losses (TRL SFTTrainer).

    hllm-creator sft --config training/configs/sft_tiny.yaml --cot runs/cot --user-vectors runs/encoders \
        --base runs/lm --out runs/sft

What trains: LoRA on the attention/MLP projections (never ``embed_tokens``: vLLM prompt_embeds bypass
it), the ``UserProjector`` and the auxiliary heads; the base stays frozen. The user vector reaches the
model through a forward pre-hook on the backbone (``creator.modeling.soft_prompt``), which TRL's fused
LM head cannot bypass. Loss = generation CE + recon_weight * profile reconstruction
+ align_weight * user/profile InfoNCE + match_weight * user/ad match BCE (each 0 = off).
Resumes from the last checkpoint in ``OUT/checkpoints`` unless ``--resume false``.
Several GPUs: ``accelerate launch training/sft.py --config ...`` (see docs/generator.md).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from trl import SFTConfig, SFTTrainer

from creator.config import parse
from creator.modeling.bases import is_named
from creator.modeling.builders import add_placeholders, ensure_vocab, load_base
from creator.modeling.generator import GeneratorConfig, PersonalizedGenerator
from creator.modeling.soft_prompt import (
    UserProjector,
    attach_user_tokens,
    backbone_of,
    embed_with_user_tokens,
    input_embedding_rms,
)
from training.artefacts import HEAD_PREFIXES, UserHeadsCheckpoints, start_run, summarize, write_model_card
from training.collators import AUX_PREFIXES, UserSFTCollator, sft_example
from training.completion_logits import compact_on_cpu
from training.losses import AuxHeads, masked_mean, pairwise_match_bce, symmetric_info_nce
from training.trainer_args import TrainerDefaults, warmup_field

logger = logging.getLogger(__name__)


MAX_SKIP_SHARE = 0.05


@dataclass
class SFTRunConfig(TrainerDefaults, SFTConfig):
    """Options of ``hllm-creator sft``: TRL's ``SFTConfig`` (every ``TrainingArguments`` field: ``optim``,
    ``weight_decay``, ``max_grad_norm``, ``torch_compile``, ...) plus the generator's own fields below.
    YAML keys = field names; flags take dashes or underscores (``--max-steps``, ``--max_steps``)."""

    cot: str = field(default="", metadata={"help": "CoT parquet file or folder (schema in docs/cot.md)"})
    user_vectors: str = field(
        default="", metadata={"help": "train-encoders dir, .parquet/.npz/.npy, or mean-minilm"}
    )
    base: str = field(default="", metadata={"help": "pretrain-lm folder, or any HF causal LM id/path"})
    out: str = field(default="runs/sft", metadata={"help": "artefact folder (checkpoints in OUT/checkpoints)"})
    catalog: str | None = field(default=None, metadata={"help": "catalog the ads come from (else rebuilt)"})
    catalog_format: str = "auto"
    train_split: str = "train"
    eval_split: str | None = "validation"
    max_rows: int | None = None
    num_user_tokens: int = 4
    dtype: str = "float32"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    recon_weight: float = 0.2
    align_weight: float = 0.1
    match_weight: float = 0.0  # on only when the encoders were not trained with a match head
    share_profile_projector: bool = True
    max_profile_tokens: int = 128
    resume: bool = field(default=True, metadata={"help": "resume from the last checkpoint in OUT/checkpoints"})
    completion_only_logits: bool = field(
        default=True,
        metadata={"help": "project only the completion positions through the LM head on the CPU too "
                          "(same loss; Gemma's 262k-row head makes it most of a step)"},
    )
    save_base: str = field(
        default="auto",
        metadata={
            "help": "copy the base into OUT/base: auto (<300M params), true or false (store its id/path)"
        },
    )
    # TRL's fields with this verb's defaults (TrainerDefaults holds the ones DPO shares)
    learning_rate: float = field(default=5e-4, metadata={"help": "peak learning rate"})
    warmup_steps: float = warmup_field(0.03)
    per_device_eval_batch_size: int | None = field(
        default=None, metadata={"help": "eval rows per device (default: per_device_train_batch_size)"}
    )
    # our collator pads and the rows are tokenised here: TRL prepares nothing
    dataset_kwargs: dict[str, Any] | str | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "TRL dataset preparation options (the rows are tokenised by the verb)"},
    )

    def __post_init__(self) -> None:
        for name in ("recon_weight", "align_weight", "match_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns the loss off), got {getattr(self, name)}")
        bad = [t for t in self.lora_targets if "embed" in t or t == "lm_head"]
        if bad:
            raise ValueError(
                f"lora_targets {bad}: LoRA on embeddings/lm_head is bypassed by vLLM prompt_embeds; "
                "target attention/MLP projections only"
            )
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("per_device_train_batch_size (--batch-size) and gradient_accumulation_steps "
                             "(--grad-accum) must be >= 1")
        if self.per_device_eval_batch_size is None:
            self.per_device_eval_batch_size = self.per_device_train_batch_size
        super().__post_init__()

    @property
    def aux_on(self) -> bool:
        return self.recon_weight > 0 or self.align_weight > 0


class UserSFTTrainer(UserHeadsCheckpoints, SFTTrainer):
    """SFTTrainer whose loss adds the weighted auxiliary terms; ``user_emb`` rides in the batch."""

    def __init__(self, *args: Any, run: SFTRunConfig, placeholder_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run, self.placeholder_ids = run, placeholder_ids

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        aux = {k: inputs.pop(k) for k in list(inputs) if k.startswith(AUX_PREFIXES)}
        loss = super().compute_loss(
            model, inputs, return_outputs=False, num_items_in_batch=num_items_in_batch
        )
        if not aux:
            return loss
        mode = "train" if self.model.training else "eval"
        steps = (
            self.current_gradient_accumulation_steps
            if num_items_in_batch is not None and mode == "train"
            else 1
        )
        for name, (weight, term) in self.aux_terms(model, inputs["user_emb"], aux).items():
            loss = loss + weight * term / steps
            self._metrics[mode][f"aux_{name}"].append(float(term.detach()))
        return loss

    def aux_terms(
        self, model: Any, user_emb: torch.Tensor, aux: dict[str, torch.Tensor]
    ) -> dict[str, tuple[float, torch.Tensor]]:
        r = self.run
        hf = self.accelerator.unwrap_model(model).get_base_model()
        backbone = backbone_of(hf)
        terms: dict[str, tuple[float, torch.Tensor]] = {}
        if r.recon_weight > 0 and "profile_input_ids" in aux:
            proj = hf.user_projector if r.share_profile_projector else hf.profile_projector
            emb = embed_with_user_tokens(
                backbone.get_input_embeddings(),
                proj,
                aux["profile_input_ids"],
                user_emb,
                self.placeholder_ids,
            )
            out = model(
                inputs_embeds=emb,
                attention_mask=aux["profile_attention_mask"],
                labels=aux["profile_labels"],
                fused_lm_head=True,
                use_cache=False,
            )
            terms["recon"] = (r.recon_weight, out.loss)
        pooled_user = None
        if r.align_weight > 0 and "profile_text_ids" in aux:
            pooled_user = hf.user_projector(user_emb).mean(1)  # (B, H)
            text = backbone(
                input_ids=aux["profile_text_ids"], attention_mask=aux["profile_text_mask"], use_cache=False
            ).last_hidden_state  # (B, T, H)
            heads = hf.aux_heads
            terms["align"] = (
                r.align_weight,
                symmetric_info_nce(
                    heads.align(pooled_user),
                    masked_mean(text, aux["profile_text_mask"]),
                    heads.logit_scale,
                    aux["profile_group"],
                ),
            )
        if r.match_weight > 0 and "ad_text_ids" in aux:
            pooled_user = hf.user_projector(user_emb).mean(1) if pooled_user is None else pooled_user
            ad = backbone(
                input_ids=aux["ad_text_ids"], attention_mask=aux["ad_text_mask"], use_cache=False
            ).last_hidden_state
            heads = hf.aux_heads
            terms["match"] = (
                r.match_weight,
                pairwise_match_bce(
                    heads.match_user(pooled_user),
                    heads.match_ad(masked_mean(ad, aux["ad_text_mask"])),
                    aux["ad_group"],
                ),
            )
        return terms


def build_generator(
    run: SFTRunConfig, d_user: int, encoders: str | None
) -> tuple[PersonalizedGenerator, Any]:
    """Base + placeholders + projector (+ aux heads) under a fresh LoRA adapter: (generator, peft model)."""
    from peft import LoraConfig, get_peft_model

    model, tok = load_base(run.base, dtype=run.dtype)
    ph = add_placeholders(tok, run.num_user_tokens)
    ensure_vocab(model, tok)
    hidden = model.config.get_text_config().hidden_size
    emb_rms = input_embedding_rms(model)  # after the embedding's own scale (Gemma multiplies by sqrt(hidden))
    torch.manual_seed(run.seed)
    projector = UserProjector(d_user, hidden, run.num_user_tokens, init_std=emb_rms).to(model.dtype)
    attach_user_tokens(model, projector, ph)
    model.aux_heads = AuxHeads(hidden).to(model.dtype)
    if not run.share_profile_projector:
        model.profile_projector = UserProjector(d_user, hidden, run.num_user_tokens, init_std=emb_rms).to(
            model.dtype
        )
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(HEAD_PREFIXES))
    # a named base (gemma-270m) is rebuilt from its package on load: never copied into the artefact
    small = n_params < 300e6 and not is_named(run.base)
    save_base = small if run.save_base == "auto" else str(run.save_base).lower() == "true"
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=run.lora_r,
            lora_alpha=run.lora_alpha,
            lora_dropout=run.lora_dropout,
            target_modules=list(run.lora_targets),
            task_type="CAUSAL_LM",
        ),
    )
    for name, p in model.named_parameters():  # PEFT froze everything but LoRA; the heads train too
        if name.startswith(HEAD_PREFIXES):
            p.requires_grad_(True)
    config = GeneratorConfig(
        base="base" if save_base else run.base,
        num_user_tokens=run.num_user_tokens,
        d_user=d_user,
        dtype=run.dtype,
        encoders=encoders,
    )
    return PersonalizedGenerator(peft_model, tok, projector, config), peft_model


def make_examples(
    gen: PersonalizedGenerator, data: Any, vectors: dict[str, Any], run: SFTRunConfig
) -> list[dict[str, Any]]:
    """Tokenised rows. A row whose prompt leaves no room for a title is skipped and counted (at most
    ``MAX_SKIP_SHARE`` of the rows, else the run stops: max_length is then simply too small)."""
    from creator.records.errors import DataError
    from training.cot_data import profile_text

    examples, no_profile, skipped = [], 0, []
    for row in data.rows:
        prof = profile_text(row) if run.aux_on else None
        if run.aux_on and prof is None:
            no_profile += 1
            prof = "{}"
        try:
            ex = sft_example(
                gen,
                data.ads[row["ad_id"]],
                row["response"],
                vectors[row["user_id"]],
                max_length=run.max_length,
                user_id=row["user_id"],
                profile_text=prof if run.aux_on else None,
                max_profile_tokens=run.max_profile_tokens,
                with_ad_text=run.match_weight > 0,
            )
        except DataError as err:
            skipped.append(err.located(row.get("_source")))
            continue
        examples.append(ex)
    if skipped:
        logger.warning("skipped %d of %d rows, e.g. %s", len(skipped), len(data.rows), skipped[0])
        if len(skipped) > MAX_SKIP_SHARE * len(data.rows):
            raise DataError(
                f"{len(skipped)} of {len(data.rows)} rows do not fit max_length {run.max_length}",
                field="max_length",
                expected=f"at most {MAX_SKIP_SHARE:.0%} of rows too long",
                got=str(skipped[0]),
                fix="raise --max-length or lower the prompt's selling points",
            )
    if no_profile:
        logger.warning(
            "%d of %d rows have no profile: their profile targets are '{}'", no_profile, len(data.rows)
        )
    return examples


def build_trainer(run: SFTRunConfig) -> tuple[UserSFTTrainer, PersonalizedGenerator]:
    """Data, user vectors, generator and trainer, ready to ``train()`` (``run`` does the rest)."""
    from datasets import Dataset

    from creator.modeling.user_vectors import load_user_vectors
    from training.cot_data import load_training_data

    out, catalog = start_run(run, "sft", ("cot", "user_vectors", "base"))
    if run.completion_only_logits:
        compact_on_cpu()
    train = load_training_data(run.cot, split=run.train_split, catalog=catalog, max_rows=run.max_rows)
    evald = None
    if run.eval_split:
        try:
            evald = load_training_data(run.cot, split=run.eval_split, catalog=catalog, max_rows=run.max_rows)
        except ValueError:
            logger.info("no %r rows: training without an eval set", run.eval_split)
    users = list(train.users.values()) + (list(evald.users.values()) if evald else [])
    vectors = load_user_vectors(run.user_vectors, users)
    d_user = len(next(iter(vectors.values())))
    gen, model = build_generator(run, d_user, run.user_vectors)
    train_ds = Dataset.from_list(make_examples(gen, train, vectors, run))
    eval_ds = Dataset.from_list(make_examples(gen, evald, vectors, run)) if evald else None
    trainer = UserSFTTrainer(
        model=model,
        args=run,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=gen.tokenizer,
        data_collator=UserSFTCollator(gen.tokenizer.pad_token_id),
        run=run,
        placeholder_ids=gen.placeholder_ids,
    )
    return trainer, gen


def run(run: SFTRunConfig) -> dict[str, Any]:
    """Train (resuming when a checkpoint exists), save the artefact to ``run.out``, return the metrics."""
    from transformers.trainer_utils import get_last_checkpoint

    trainer, gen = build_trainer(run)
    out, ckpts = Path(run.out), trainer.args.output_dir
    last = get_last_checkpoint(ckpts) if run.resume and Path(ckpts).is_dir() else None
    if last:
        logger.info("resuming from %s", last)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    metrics = summarize(trainer, result, seconds, trainer.train_dataset)
    metrics["resumed_from"] = last
    if trainer.eval_dataset is not None:
        metrics["eval"] = trainer.evaluate()
    gen.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_model_card(out, "SFT", run, metrics)
    return metrics


EXAMPLE = """example:
  hllm-creator sft --config training/configs/sft_tiny.yaml --cot runs/cot --user-vectors runs/encoders \\
      --base runs/lm --out runs/sft --max-steps 300
"""


def parse_config(argv: list[str] | None = None) -> SFTRunConfig:
    """``SFTRunConfig`` from TRL's and the project's defaults, then ``--config YAML``, then the flags."""
    return parse([SFTRunConfig], argv, "LoRA SFT of the personalized generator (TRL SFTTrainer).", EXAMPLE)[0]


def main(argv: list[str] | None = None) -> int:
    run_config = parse_config(argv)
    metrics = run(run_config)
    print(
        f"sft: {metrics['steps']} steps, loss {metrics['first_logged_loss']} -> "
        f"{metrics['last_logged_loss']}, "
        f"{metrics['tokens_per_second']} tokens/s; artefact in {run_config.out}"
    )
    return 0


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
