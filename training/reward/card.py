"""The reward model's model card (``OUT/README.md``) and its held-out metrics table.

Used by ``training.reward.train`` (``hllm-creator train-reward``); kept apart so that module stays the
training loop and its config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.reward.evaluate import segment_table

if TYPE_CHECKING:
    from training.reward.config import RewardTrainConfig


def metrics_table(results: dict[str, Any]) -> str:
    """Markdown: one row per (evaluation set, scorer)."""
    lines = ["| eval set | scorer | AUC | gAUC | log loss | ECE | rows |", "|---|---|---|---|---|---|---|"]

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    for set_name, table in results.items():
        for scorer, m in table.items():
            lines.append(
                f"| {set_name} | {scorer} | {f(m['auc'])} | {f(m['gauc'])} | {f(m['log_loss'])} | "
                f"{f(m['ece'])} | {m['n']} |"
            )
    return "\n".join(lines)


def model_card(cfg: RewardTrainConfig, metrics: dict[str, Any]) -> str:
    m = cfg.model
    user = (
        f"the UserModel in `{cfg.user_model_dir}` ({m.user_dim}-d)"
        if m.user_dim
        else "learned attention pooling of the history (no external user model)"
    )
    points = ", selling points" if m.use_selling_points else ""
    refit = (
        f"\n  Refit: trained again on training + validation users ({metrics['refit']['users']}) for the "
        f"{metrics['refit']['epochs']} epochs validation chose; the counts and ids are theirs."
        if metrics.get("refit")
        else ""
    )
    val = metrics.get("validation", {})
    probes = "".join(
        f", {label} {val[k]:.4f}"
        for k, label in (
            ("auc_unknown_ids", "every item id unknown"),
            ("auc_cold_ads", "cold ads (ids and counts off)"),
        )
        if val.get(k) is not None
    )
    rw = metrics.get("rewrites")
    rewrites = (
        f"- **Rewritten titles** ({cfg.rewrite_fraction:.0%} of the training titles were rule-based rewrites): on "
        f"the uniform test rows, AUC {rw['auc_own_titles']:.4f} with the ads' own titles and "
        f"{rw['auc_rewritten_titles']:.4f} with rewrites; a positive's rewrite scores above its real title "
        f"{rw['positives_rewrite_above_own']:.1%} of the time (50% = the wording is no signal).\n"
        if rw
        else ""
    )
    cr = metrics.get("corruptions") or {}
    if cr:
        rewrites += (
            f"- **Corrupted titles** ({cfg.corruption_negatives} per training positive, "
            f"{cfg.corruption_loss} loss): on "
            "the test users' positives the real title scores above its corrupted version "
            + ", ".join(f"{k.replace('_', ' ')} {v['real_beats_corrupted']:.1%}" for k, v in cr.items())
            + " of the time (100% = the judge always prefers the readable title).\n"
        )
    segments = (
        "## Where the AUC is won and lost (uniform negatives, test users)\n\n"
        f"{segment_table(metrics['segments'])}\n\n"
        if metrics.get("segments")
        else ""
    )
    return f"""# Reward model (CTR judge) card

- **What it predicts**: p(click | user history, ad title text{points}).
  Probabilities are calibrated to the training mix: 1 positive per {cfg.negatives} sampled negatives
  ({cfg.sampling} sampling){" plus real impression labels" if cfg.use_impressions else ""}, not to a live CTR.
- **Inputs**: title vector from `{m.item_encoder}` (frozen, {m.item_dim}-d), the {m.max_history} most recent
  history items, DIN attention (projection {m.proj_dim}, attention MLP {m.attn_hidden}), hashed title tokens
  ({m.token_buckets} buckets, 0 = off), user vector from {user},
  {"popularity and co-occurrence counts of the training users (`cooccurrence.npz`, leave-one-out in training), "
   if m.cooccurrence else ""}{f"learned item-id embeddings ({m.id_vocab} ids in `item_ids.json`, id dropout "
   f"{m.id_dropout}), " if m.item_ids else ""}MLP {m.mlp_hidden}, dropout {m.dropout}.
- **Data**: `{cfg.data}` ({metrics["n_ads"]} ads); users split by a seeded hash: {metrics["users"]}.
  Validation users choose the epoch; all numbers below are on the test users, never trained on.{refit}
- **Training**: {metrics["train_seconds"]:.0f} s on {cfg.threads} CPU threads; best validation AUC{
  " (of the run before the refit)" if metrics.get("refit") else ""}
  {metrics["best_val_auc"]:.4f}{f" (weights averaged, decay {cfg.ema_decay})" if cfg.ema_decay else ""}{probes}.
{rewrites}- **Anti-gaming**: `score()` subtracts the `creator.reward.gaming` penalties (history copy, repetition,
  history-only keywords, length) unless `raw=True`; ungrounded claims are the guard's job (reject before scoring).
- **Baselines**: popularity and zero-shot cosine are Platt-scaled on training users; the match head is
  {"included" if cfg.user_model_dir else "omitted (no user_model_dir given)"}.

## Held-out metrics

{metrics_table(metrics["results"])}

{segments}## Limits

- Sampled negatives are easier than real impressions: uniform-negative AUC overstates live ranking quality;
  the popularity and same-category rows show how much.
- Beyond the rule-based rewrites above, the model has only seen catalog titles: scores for freely written
  titles are an extrapolation, which is why the gaming penalties and the guard exist.
"""
