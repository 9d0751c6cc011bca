"""The report's plots as base64 PNGs (matplotlib's Agg backend), so ``report.html`` needs no external file.

Judge score distributions, the per-category breakdown, calls vs quality, and the 2D map of user segments;
``eval.render.write_report`` embeds what ``make_figures`` returns.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def make_figures(report: dict[str, Any], arrays: dict[str, Any]) -> dict[str, str]:
    """Title -> base64 PNG for every plot the data supports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: dict[str, str] = {}
    names = list(report["systems"])
    dist = arrays["judge"] or arrays["sim_lift"]
    label = "judge score" if arrays["judge"] else "history-similarity lift over the original"
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for n in names:
        v = np.asarray(dist[n], dtype=float)
        v = v[np.isfinite(v)]
        if len(v):
            ax.hist(v, bins=30, histtype="step", linewidth=1.6, label=n)
    ax.set_xlabel(label)
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    figs[f"Distribution of the {label}"] = _png(fig)

    g = report["per_group"]
    if g["groups"]:
        groups = list(g["groups"])
        fig, ax = plt.subplots(figsize=(8, 3.8))
        width = 0.8 / len(names)
        for j, n in enumerate(names):
            ax.bar(np.arange(len(groups)) + j * width, [g["groups"][k][n] for k in groups], width, label=n)
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
        ax.set_xticklabels([k[:18] for k in groups], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(g["metric"])
        vals = [g["groups"][k][n] for k in groups for n in names if np.isfinite(g["groups"][k][n])]
        if vals:  # zoom on the data: scores sit in a narrow band far from 0
            lo, hi = min(vals), max(vals)
            pad = 0.15 * (hi - lo) or 0.01
            ax.set_ylim(lo - pad, hi + pad)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figs[f"Per {g['key']}: mean {g['metric']}"] = _png(fig)

    quality = "judge_score" if arrays["judge"] else "similarity_lift"
    if any(report["systems"][n]["calls"] > 0 for n in names):
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for n in names:
            r = report["systems"][n]
            q = r[quality]
            ax.errorbar(
                [max(r["calls"], 1)],
                [q["estimate"]],
                yerr=[[q["estimate"] - q["low"]], [q["high"] - q["estimate"]]],
                fmt="o",
                capsize=3,
            )
            ax.annotate(
                n, (max(r["calls"], 1), q["estimate"]), textcoords="offset points", xytext=(5, 4), fontsize=8
            )
        ax.set_xscale("log")
        ax.set_xlabel("generation calls (log; the original counts as 1)")
        ax.set_ylabel(quality.replace("_", " "))
        figs["Generation calls vs quality"] = _png(fig)

    seg = arrays.get("segments")
    if seg is not None:
        fig, ax = plt.subplots(figsize=(6, 4.6))
        sc = ax.scatter(seg["xy"][:, 0], seg["xy"][:, 1], c=seg["labels"], cmap="tab20", s=9, alpha=0.8)
        ax.set_xlabel("PC 1 of user history profile")
        ax.set_ylabel("PC 2")
        fig.colorbar(sc, ax=ax, label="segment")
        figs["Users in 2D (PCA of MiniLM history profiles), coloured by segment"] = _png(fig)
    return figs
