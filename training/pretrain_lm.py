"""Train the offline base LM from scratch: a BPE tokenizer and a tiny Llama on the catalog's own texts.

    hllm-creator pretrain-lm --catalog ../shared/data/amazon_office_products --out runs/lm --max-steps 1500

Corpus, two parts:
- text: every ad's title, brand, selling points and description, every history title, and (with
  ``--cot``) the teacher's titles and profiles, joined with EOS and cut into blocks of ``block_size``
  tokens, next-token loss on every token;
- task (``task_targets`` per ad, 0 turns it off): the generator's own prompt for every ad (the same text
  ``PersonalizedGenerator`` builds, user placeholders included) followed by a title made from the ad
  alone by the rule-based edits of ``creator.records.rewrite`` (the trimmed title, title - hook, hook: title),
  loss on the title only. A from-scratch LM learns to copy from its prompt only after many steps of
  seeing it pay off; these examples teach that before SFT, from every ad of the catalog rather than
  only the ads the CoT data covers, and need no teacher and no user. The output folder is a normal
HF model folder (config, weights, tokenizer with the ``<u_i>`` placeholders and a chat template), the
``--base`` of ``hllm-creator sft``. Resumes from ``OUT/checkpoints`` when a checkpoint is there.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from creator.config import parse, save_resolved
from creator.modeling.builders import MAX_PLACEHOLDERS, PRESETS, build_tiny_lm, train_tokenizer

logger = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    """Options of ``hllm-creator pretrain-lm``."""

    catalog: str = field(default="", metadata={"help": "catalog folder/file (any load_catalog format)"})
    catalog_format: str = "auto"
    cot: str | None = field(
        default=None, metadata={"help": "optional CoT parquet: adds its titles and profiles"}
    )
    out: str = "runs/lm"
    preset: str = "tiny"
    arch: str = "llama"
    vocab_size: int = 4096
    num_placeholders: int = MAX_PLACEHOLDERS
    block_size: int = 128
    max_docs: int | None = None
    max_doc_chars: int = 600  # descriptions are long; title and selling points come first and are kept
    task_targets: int = 5  # task examples per ad (trimmed title, title - hook, hook: title); 0 = text only
    num_user_tokens: int = 4  # placeholders written in the task prompts (SFT's num_user_tokens)
    eval_fraction: float = 0.02
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-3
    batch_size: int = 16
    warmup_ratio: float = 0.05
    logging_steps: int = 20
    save_steps: int = 500
    seed: int = 0
    resume: bool = True

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; use one of {sorted(PRESETS)}")
        if not 16 <= self.block_size <= PRESETS[self.preset].max_positions:
            raise ValueError(
                f"block_size must be in [16, {PRESETS[self.preset].max_positions}] for preset "
                f"{self.preset}, got {self.block_size}"
            )
        if not 0 <= self.eval_fraction < 0.5:
            raise ValueError(f"eval_fraction must be in [0, 0.5), got {self.eval_fraction}")


def catalog_corpus(catalog: Any, cot_path: str | None = None, max_doc_chars: int | None = None) -> list[str]:
    """One document per ad (title, brand, selling points, description), per history title and per CoT row."""
    docs: list[str] = []
    for ad in catalog.ads.values():
        parts = [ad.title, f"Brand: {ad.brand}" if ad.brand else "", *ad.selling_points, ad.description]
        docs.append("\n".join(p for p in parts if p))
    seen = {ad.title for ad in catalog.ads.values()}
    for user in catalog.users.values():
        for t in user.history_titles:
            if t not in seen:
                seen.add(t)
                docs.append(t)
    if cot_path:
        from training.cot_data import COT_REQUIRED, profile_text, read_rows

        for row in read_rows(cot_path, COT_REQUIRED):
            docs.append(row["response"])
            prof = profile_text(row)
            if prof:
                docs.append(prof)
    if max_doc_chars:
        docs = [d[:max_doc_chars] for d in docs]
    return [d for d in docs if d.strip()]


def task_examples(catalog: Any, per_ad: int, num_user_tokens: int, *, max_chars: int = 120,
                  max_added_chars: int = 40) -> list[tuple[str, str]]:
    """(prompt content, target title) pairs: the generator's prompt for each ad and titles made from the ad alone.

    Targets, in order, up to ``per_ad``: the title trimmed to the length budget, then ``title - hook`` and
    ``hook: title`` for each hook the prompt lists. Every word of a target is in its prompt."""
    from creator.modeling.generator import GeneratorConfig, prompt_content, prompt_points
    from creator.records.rewrite import variants

    config = GeneratorConfig(num_user_tokens=num_user_tokens)
    pairs: list[tuple[str, str]] = []
    for ad in catalog.ads.values():
        targets = variants(ad.title, prompt_points(ad, config), max_chars=max_chars, max_added_chars=max_added_chars)
        content = prompt_content(ad, config)
        pairs += [(content, " ".join(t.split())) for t in dict.fromkeys(targets[:per_ad]) if t.strip()]
    return pairs


def pack(docs: list[list[int]], eos: int, block: int) -> list[list[int]]:
    """Concatenate token lists with EOS after each and cut into full blocks (the ragged tail is dropped)."""
    stream = [t for d in docs for t in [*d, eos]]
    return [stream[i : i + block] for i in range(0, len(stream) - block + 1, block)]


def encode_tasks(tok: Any, pairs: list[tuple[str, str]], max_len: int) -> list[dict[str, list[int]]]:
    """Task pairs -> {input_ids, labels} with the prompt masked (-100); longer than ``max_len`` is skipped, counted."""
    rows, skipped = [], 0
    for content, target in pairs:
        prompt = tok(tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                             tokenize=False), add_special_tokens=False)["input_ids"]
        title = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        if len(prompt) + len(title) > max_len:
            skipped += 1
            continue
        rows.append({"input_ids": prompt + title, "labels": [-100] * len(prompt) + title})
    if skipped:
        logger.info("skipped %d task examples longer than %d tokens", skipped, max_len)
    return rows


def pad_rows(rows: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids with ``pad_id``, labels with -100, attention_mask 1 on real tokens."""
    n = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        k = len(r["input_ids"])
        ids[i, :k] = torch.tensor(r["input_ids"])
        labels[i, :k] = torch.tensor(r["labels"])
        mask[i, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def corpus_rows(cfg: PretrainConfig, catalog: Any, tok_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The tokenizer (trained here, or the one a resumed run saved) and the packed text blocks + task rows."""
    docs = catalog_corpus(catalog, cfg.cot, cfg.max_doc_chars)
    random.Random(cfg.seed).shuffle(docs)
    docs = docs[: cfg.max_docs] if cfg.max_docs else docs
    task_pairs = task_examples(catalog, cfg.task_targets, cfg.num_user_tokens) if cfg.task_targets else []
    random.Random(cfg.seed + 1).shuffle(task_pairs)  # eval examples are a random slice, not the first ads
    if (tok_dir / "tokenizer.json").exists():  # resume: the model's vocabulary must not change
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tok = train_tokenizer(docs + [f"{c}\n{t}" for c, t in task_pairs], cfg.vocab_size,
                              num_placeholders=cfg.num_placeholders)
        tok.save_pretrained(tok_dir)
    ids = tok(docs, add_special_tokens=False)["input_ids"]
    n_eval = int(len(ids) * cfg.eval_fraction)
    train_rows = [{"input_ids": b, "labels": b} for b in pack(ids[n_eval:], tok.eos_token_id, cfg.block_size)]
    eval_rows = [{"input_ids": b, "labels": b} for b in pack(ids[:n_eval], tok.eos_token_id, cfg.block_size)]
    n_text = len(train_rows)
    tasks = encode_tasks(tok, task_pairs, PRESETS[cfg.preset].max_positions)
    n_task_eval = int(len(tasks) * cfg.eval_fraction)
    train_rows += tasks[n_task_eval:]
    eval_rows += tasks[:n_task_eval]
    logger.info("corpus: %d docs -> %d text blocks of %d tokens; %d task examples", len(docs), n_text,
                cfg.block_size, len(tasks) - n_task_eval)
    return tok, {"docs": len(docs), "train_blocks": n_text, "train": train_rows, "eval": eval_rows}


def training_args(cfg: PretrainConfig, out: Path) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type="cosine",
        weight_decay=0.01,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=2,
        seed=cfg.seed,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        disable_tqdm=False,
    )


def run(cfg: PretrainConfig) -> dict[str, Any]:
    """Tokenizer + tiny LM trained on the catalog's texts, saved to ``cfg.out``; returns the metrics."""
    from datasets import Dataset
    from transformers import Trainer
    from transformers.trainer_utils import get_last_checkpoint

    from creator.io import load_catalog

    if not cfg.catalog:
        raise ValueError("--catalog is required (e.g. ../shared/data/amazon_office_products)")
    out = Path(cfg.out)
    save_resolved(out / "resolved_config.yaml", cfg)
    catalog = load_catalog(cfg.catalog, cfg.catalog_format).require_ads()
    tok, rows = corpus_rows(cfg, catalog, out / "tokenizer_cache")
    train_rows, eval_rows = rows["train"], rows["eval"]
    model = build_tiny_lm(tok, cfg.preset, arch=cfg.arch, seed=cfg.seed)
    args = training_args(cfg, out)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        data_collator=partial(pad_rows, pad_id=tok.pad_token_id),
    )
    last = get_last_checkpoint(args.output_dir) if cfg.resume and Path(args.output_dir).is_dir() else None
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    metrics = run_metrics(cfg, trainer, result, time.perf_counter() - t0, rows)
    metrics.update({"vocab": len(tok), "params": sum(p.numel() for p in model.parameters())})
    metrics = {k: metrics[k] for k in METRIC_ORDER if k in metrics}
    if eval_rows:
        ev = trainer.evaluate()
        metrics["eval_loss"] = ev["eval_loss"]
        metrics["eval_perplexity"] = round(math.exp(min(ev["eval_loss"], 50)), 2)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "README.md").write_text(
        f"# hllm-creator base LM ({cfg.preset}, {cfg.arch})\n\nTrained from scratch on the texts of "
        f"`{cfg.catalog}` by `hllm-creator pretrain-lm`: {metrics['params'] / 1e6:.2f}M parameters, "
        "vocabulary "
        f"{len(tok)}, {metrics['steps']} steps, eval perplexity {metrics.get('eval_perplexity')}.\n"
        "Use it as `--base` of `hllm-creator sft`. Options in resolved_config.yaml, log in metrics.json.\n"
    )
    return metrics


METRIC_ORDER = ("docs", "train_blocks", "task_examples", "block_size", "vocab", "params", "steps", "train_loss",
                "first_logged_loss", "last_logged_loss", "seconds", "train_tokens", "tokens_per_second", "device")


def run_metrics(cfg: PretrainConfig, trainer: Any, result: Any, seconds: float, rows: dict[str, Any]) -> dict:
    logs = [h for h in trainer.state.log_history if "loss" in h]
    train_rows = rows["train"]
    mean_len = sum(len(r["input_ids"]) for r in train_rows) / max(len(train_rows), 1)
    tokens = int(trainer.state.global_step * cfg.batch_size * mean_len)
    return {
        "docs": rows["docs"],
        "train_blocks": rows["train_blocks"],
        "task_examples": len(train_rows) - rows["train_blocks"],
        "block_size": cfg.block_size,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": logs[0]["loss"] if logs else None,
        "last_logged_loss": logs[-1]["loss"] if logs else None,
        "seconds": round(seconds, 2),
        "train_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
        "device": "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()} threads",
    }


EXAMPLE = """example:
  hllm-creator pretrain-lm --catalog ../shared/data/amazon_office_products --out runs/lm --max-steps 1500
"""


def parse_config(argv: list[str] | None = None) -> PretrainConfig:
    """``PretrainConfig`` from defaults, then ``--config YAML``, then the flags."""
    return parse([PretrainConfig], argv, "Pretrain the tiny offline base LM on catalog texts.", EXAMPLE)[0]


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(argv)
    m = run(cfg)
    print(
        f"pretrain-lm: {m['params'] / 1e6:.2f}M params, {m['steps']} steps, loss {m['first_logged_loss']} -> "
        f"{m['last_logged_loss']}, eval ppl {m.get('eval_perplexity')}, {m['tokens_per_second']} tokens/s; "
        f"model in {cfg.out}"
    )
    return 0


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
