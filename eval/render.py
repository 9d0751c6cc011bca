"""Turn an evaluation into ``report.json``, ``report.md`` and a self-contained ``report.html``.

The HTML has no external resource: CSS is inline and every plot is a base64 PNG drawn with
matplotlib's Agg backend (judge score distributions, per-category breakdown, calls vs quality,
the 2D map of user segments), so the file can be mailed or attached to a ticket as is.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from eval.breakdowns import sheet_rows, sheet_title
from eval.figures import make_figures
from eval.metrics.bootstrap import Interval


def _iv(d: dict[str, Any] | None, scale: float = 1.0, digits: int = 3) -> str:
    return "n/a" if not d else Interval(**d).format(digits, scale)


def headline_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table: one row per system, a 95% bootstrap interval after each headline figure."""
    judged = report.get("judge") is not None
    head = [
        "system",
        "calls",
        "changed %",
        "factual errors % [95% CI]",
        *(["fluency NLL [95% CI]", "fluency pass % [95% CI]"] if report.get("fluency") else []),
        "compliant % [95% CI]",
        "history-sim lift [95% CI]",
    ]
    if judged:
        head += ["judge score [95% CI]", "judge lift [95% CI]", "Adv vs original [95% CI]"]
    rows = []
    for name, r in report["systems"].items():
        row = [
            name,
            f"{r['calls']:g}",
            f"{100 * r['changed_vs_original']:.1f}",
            _iv(r["factual_error_rate"], 100, 1),
            *([_iv(r["fluency_nll"], digits=2), _iv(r["fluency_pass"], 100, 1)] if report.get("fluency") else []),
            _iv(r["compliant"], 100, 1),
            _iv(r["similarity_lift"]),
        ]
        if judged:
            adv = r.get("adv_vs_original")
            row += [
                _iv(r.get("judge_score")),
                _iv(r.get("judge_lift"), digits=4),
                "-" if adv is None else _iv(adv["ci"]),
            ]
        rows.append(row)
    return head, rows


def adv_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Adv of the row system over the column system (antisymmetric)."""
    m = report["adv_matrix"]
    names = list(m)
    return ["row vs column", *names], [
        [a, *("-" if a == b else f"{m[a][b]:+.3f}" for b in names)] for a in names
    ]


def diversity_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Within one ad (its titles across segments or users) and across the catalog (one title per ad)."""
    head = [
        "system",
        "ads with variants",
        "unique titles per ad",
        "distinct-1 / -2 (within ad)",
        "self-BLEU (within ad)",
        "segment spread",
        "distinct-1 / -2 (catalog)",
        "self-BLEU (catalog)",
    ]
    rows = []
    for name, r in report["systems"].items():
        d = r["diversity"]
        rows.append(
            [
                name,
                str(d["ads_with_variants"]),
                _fmt(d["unique_titles_per_ad"], 1),
                f"{_fmt(d['distinct1_within_ad'])} / {_fmt(d['distinct2_within_ad'])}",
                _fmt(d["self_bleu_within_ad"]),
                _fmt(r["segment_spread"]),
                f"{_fmt(d['distinct1_catalog'])} / {_fmt(d['distinct2_catalog'])}",
                _fmt(d["self_bleu_catalog"]),
            ]
        )
    return head, rows


def compliance_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Share within each channel's limits, banned words and banned attributes, per system (percent)."""
    first = next(iter(report["systems"].values()))["compliance"]
    channels = list(first["channels"])
    head = ["system", *(f"within {c} %" for c in channels), "banned word %", "banned attribute %"]
    rows = []
    for name, r in report["systems"].items():
        c = r["compliance"]
        attr = c["banned_attribute_rate"]
        rows.append(
            [
                name,
                *(f"{100 * c['channels'][ch]['within']:.1f}" for ch in channels),
                f"{100 * c['banned_word_rate']:.1f}",
                "off" if attr is None else f"{100 * attr:.1f}",
            ]
        )
    return head, rows


def reference_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    if not report.get("n_reference_pairs"):
        return None
    head = ["system", "R-1", "R-2", "R-L", "copy-original R-1 / R-2 / R-L", "vs original R-1 / R-2 / R-L"]
    rows = []
    for name, r in report["systems"].items():
        ref = r["reference"]

        def three(d: dict[str, float]) -> str:
            return " / ".join(f"{d[k]:.2f}" for k in ("rouge1", "rouge2", "rougeL"))

        v = ref["vs_reference"]
        rows.append(
            [
                name,
                f"{v['rouge1']:.2f}",
                f"{v['rouge2']:.2f}",
                f"{v['rougeL']:.2f}",
                three(ref["copy_original_vs_reference"]),
                three(ref["vs_original"]),
            ]
        )
    return head, rows


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def group_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    g = report["per_group"]
    names = list(report["systems"])
    rows = [[k, str(v["n"]), *(_fmt(v[n]) for n in names)] for k, v in g["groups"].items()]
    return [g["key"], "pairs", *names], rows


def worst_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["metric", "system", "user", "ad", "title", "original", "value", "what is wrong"]
    return head, [
        [
            w["metric"],
            w["system"],
            w["user_id"],
            w["ad_id"],
            w["title"],
            w["original"],
            _fmt(w["value"], 4),
            w["detail"],
        ]
        for w in report["worst"]
    ]


def notes(report: dict[str, Any]) -> list[str]:
    out = [
        f"{report['n_pairs']} (user, ad) pairs ({report['n_users']} users, {report['n_ads']} ads)"
        + (
            f", sampled from {report['n_pairs_shared']} shared pairs"
            if report["n_pairs_shared"] > report["n_pairs"]
            else ""
        )
        + "; intervals are 95% percentile bootstrap over pairs."
    ]
    for name, c in report["coverage"].items():
        if c["left_out"]:
            out.append(
                f"system {name}: {c['left_out']} of its {c['pairs']} pairs are not covered by every "
                "system and were left out."
            )
    out.append("judge: " + (report["judge"] or "none given (pass --judge): judge columns omitted"))
    if report.get("rouge_scorer"):
        out.append(
            f"ROUGE scorer: {report['rouge_scorer']}, on {report['n_reference_pairs']} pairs with a "
            "reference; copy-the-original is the baseline to beat."
        )
    else:
        out.append("no reference titles on these pairs: ROUGE not computed.")
    checker = next(iter(report["systems"].values()))["checker"]
    out.append(
        f"factuality: serving guard ({checker}), fact rules only; compliance primary channel: "
        f"{next(iter(report['systems'].values()))['compliance']['primary_channel']}."
    )
    out.append(
        "history-sim lift: MiniLM cosine of the title with the user's prior-history profile minus that "
        "of the original title."
    )
    return out


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    parts = [
        "# Evaluation report",
        "",
        *[f"- {n}" for n in notes(report)],
        "",
        "## Systems side by side",
        "",
        markdown_table(*headline_rows(report)),
        "",
        "## Compliance by channel",
        "",
        markdown_table(*compliance_rows(report)),
        "",
        "## Diversity",
        "",
        markdown_table(*diversity_rows(report)),
    ]
    refs = reference_rows(report)
    if refs:
        parts += ["", "## Reference overlap (ROUGE F1 x 100)", "", markdown_table(*refs)]
    if report.get("adv_matrix"):
        parts += ["", "## Judge Adv, row vs column", "", markdown_table(*adv_rows(report))]
    g = report["per_group"]
    parts += ["", f"## Per {g['key']}: mean {g['metric']}", "", markdown_table(*group_rows(report))]
    parts += ["", "## Worst examples per metric", "", markdown_table(*worst_rows(report)), ""]
    for name, sheet in (report.get("side_by_side") or {}).items():
        parts += [f"## {sheet_title(name, sheet)}", "", markdown_table(*sheet_rows(sheet)), ""]
    return "\n".join(parts)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%}figcaption{font-weight:600}"
)


def render_html(report: dict[str, Any], figures: dict[str, str]) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Evaluation report</title>",
        f"<style>{CSS}</style></head><body><h1>Evaluation report</h1><ul>",
        *(f"<li>{html.escape(n)}</li>" for n in notes(report)),
        "</ul>",
        "<h2>Systems side by side</h2>",
        _html_table(*headline_rows(report)),
        "<h2>Compliance by channel</h2>",
        _html_table(*compliance_rows(report)),
        "<h2>Diversity</h2>",
        _html_table(*diversity_rows(report)),
    ]
    if report.get("adv_matrix"):
        parts += ["<h2>Judge Adv, row vs column</h2>", _html_table(*adv_rows(report))]
    refs = reference_rows(report)
    if refs:
        parts += ["<h2>Reference overlap (ROUGE F1 x 100)</h2>", _html_table(*refs)]
    parts.append("<h2>Plots</h2>")
    for title, b64 in figures.items():
        parts.append(
            f"<figure><figcaption>{html.escape(title)}</figcaption>"
            f"<img class='plot' alt='{html.escape(title)}' src='data:image/png;base64,{b64}'></figure>"
        )
    g = report["per_group"]
    parts += [
        f"<h2>Per {html.escape(g['key'])}: mean {html.escape(g['metric'])}</h2>",
        _html_table(*group_rows(report)),
        "<h2>Worst examples per metric</h2>",
        _html_table(*worst_rows(report)),
    ]
    for name, sheet in (report.get("side_by_side") or {}).items():
        parts += [f"<h2>{html.escape(sheet_title(name, sheet))}</h2>", _html_table(*sheet_rows(sheet))]
    parts.append("</body></html>")
    return "\n".join(parts)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_report(report: dict[str, Any], arrays: dict[str, Any], out: str | Path) -> list[Path]:
    """report.json, report.md and report.html in ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "report.html"]
    paths[0].write_text(json.dumps(_jsonable(report), indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(render_markdown(report), encoding="utf-8")
    paths[2].write_text(render_html(report, make_figures(report, arrays)), encoding="utf-8")
    return paths
