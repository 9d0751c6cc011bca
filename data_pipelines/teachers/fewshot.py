"""Completion prompts for a *base* LM as teacher: worked examples, then the row, and one line to continue.

A pretrained base model (Gemma 3 270M, ``--teacher hf --teacher-model gemma-270m``) has no chat template and
does not follow instructions: asked for a JSON profile it continues the purchase list it is shown. It does
continue a pattern. So each task becomes a page of worked examples and the model writes one line:

- ``profile``: a shopper's purchases, then ``Interests:``; the line is split at commas into interests.
- ``cot_title``: the shopper's interests and purchases, the product and its selling points, then
  ``Selling point for this shopper:``. The examples show one product given two different points for two
  shoppers. The model's line is joined to the ad's title as every teacher joins a hook (``title -
  point``, within the length budget), so the product's name and facts are the ad's own. Asked for the
  whole title, the stock base copied the product title back (4 of 8 rows rejected as unchanged). The
  selling points used are read back from the line's words.
- ``fact_check`` is not asked of a base model: the rule-based guard checks every title it writes.

The examples are written for this module (generic office products, no catalog data). The reply is the
task's JSON, built here from the line, so the pipeline downstream is the one every teacher feeds.

    >>> prompt = title_prompt({"title": "Desk Lamp, LED", "selling_points": ["clamps to any desk"]},
    ...                       ["Drafting Table"], {"long_term_interests": ["drawing"]})
    >>> prompt.splitlines()[-1]
    'Selling point for this shopper:'
    >>> title_reply(" Clamps to Any Desk\\nShopper: ...", {"title": "Desk Lamp, LED",
    ...             "selling_points": ["clamps to any desk", "dims"]}, budget=60)
    {'suitable_user_info': '', 'selling_points': ['clamps to any desk'], 'title': 'Desk Lamp, LED - Clamps to Any Desk'}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from creator.records.rewrite import compose

PROFILE_EXAMPLES = (
    (["Watercolor Paint Set, 24 Colors", "Cold Press Watercolor Paper Pad, 9 x 12 Inches",
      "Round Detail Brushes, 5 Pack"],
     "watercolor painting, art paper, fine brushes"),
    (["Shipping Labels for Laser Printers, 2 x 4 Inches, 1000 Labels", "Packing Tape, Clear, 6 Rolls",
      "Bubble Mailers, 6 x 10 Inches, 50 Pack"],
     "shipping packages, labels, mailers"),
)

TITLE_EXAMPLES = (
    {
        "interests": "watercolor painting, art paper, fine brushes",
        "purchases": ["Watercolor Paint Set, 24 Colors", "Round Detail Brushes, 5 Pack"],
        "product": "Spiral Sketchbook, 9 x 12 Inches, 100 Sheets",
        "points": ["heavyweight paper that takes wet media without buckling",
                   "micro-perforated sheets tear out cleanly"],
        "hook": "Heavyweight Paper That Takes Wet Media",
    },
    {
        "interests": "shipping packages, labels, mailers",
        "purchases": ["Packing Tape, Clear, 6 Rolls", "Bubble Mailers, 6 x 10 Inches, 50 Pack"],
        "product": "Spiral Sketchbook, 9 x 12 Inches, 100 Sheets",
        "points": ["heavyweight paper that takes wet media without buckling",
                   "micro-perforated sheets tear out cleanly"],
        "hook": "Micro-Perforated Sheets Tear Out Cleanly",
    },
    {
        "interests": "shipping packages, labels, mailers",
        "purchases": ["Shipping Labels for Laser Printers, 2 x 4 Inches, 1000 Labels"],
        "product": "Label Maker with 2 Tape Cassettes, QWERTY Keyboard",
        "points": ["prints labels up to 12 mm wide", "runs on 6 AA batteries or an adapter"],
        "hook": "Prints Labels up to 12 mm Wide",
    },
)


def _lines(items: Sequence[str], limit: int) -> str:
    return "\n".join(f"- {' '.join(str(t).split())}" for t in list(items)[-limit:])


def profile_prompt(history: Sequence[str], limit: int = 8) -> str:
    """Worked examples, then this shopper's purchases and ``Interests:`` for the model to continue."""
    blocks = [f"Purchases:\n{_lines(h, limit)}\nInterests: {i}" for h, i in PROFILE_EXAMPLES]
    blocks.append(f"Purchases:\n{_lines(history, limit) or '- (none)'}\nInterests:")
    return "\n\n".join(blocks)


def profile_reply(text: str) -> dict[str, Any]:
    """The profile JSON from the model's line: its comma-separated interests (at most 5)."""
    line = first_line(text)
    interests = [p.strip(" .;") for p in line.split(",") if p.strip(" .;")][:5]
    return {"long_term_interests": interests, "short_term_interests": [], "preferences": [], "needs": [],
            "description": line}


def interests_line(profile: dict[str, Any]) -> str:
    found = [*profile.get("long_term_interests", []), *profile.get("short_term_interests", [])]
    return ", ".join(found[:5]) or str(profile.get("description") or "") or "(unknown)"


def title_prompt(ad: dict[str, Any], history: Sequence[str], profile: dict[str, Any], limit: int = 4,
                 max_points: int = 4) -> str:
    """Worked examples, then this shopper and product, and ``Selling point for this shopper:`` to continue."""

    def block(interests: str, purchases: Sequence[str], product: str, points: Sequence[str]) -> str:
        return (f"Shopper's interests: {interests}\nShopper bought:\n{_lines(purchases, limit) or '- (none)'}\n"
                f"Product: {' '.join(product.split())}\nSelling points:\n{_lines(points, max_points) or '- (none)'}\n"
                "Selling point for this shopper:")

    shots = [block(e["interests"], e["purchases"], e["product"], e["points"]) + f" {e['hook']}"
             for e in TITLE_EXAMPLES]
    row = block(interests_line(profile), history, ad["title"], list(ad.get("selling_points") or [])[:max_points])
    return "\n\n".join([*shots, row])


def first_line(text: str) -> str:
    """The continuation up to its first line break, spaces collapsed and stray quotes stripped."""
    return " ".join(text.strip().split("\n", 1)[0].split()).strip("\"' ")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def title_reply(text: str, ad: dict[str, Any], budget: int, suitable: str = "") -> dict[str, Any]:
    """The cot_title JSON from the model's line (the selling point it chose, in its words): the ad's title
    joined with that phrase as every teacher joins a hook (``title - hook``, trimmed to ``budget``
    characters). The selling points used are those at least half of whose words (of 3+ letters) the
    phrase contains. An empty line gives an empty title, which the reply check rejects."""
    phrase = first_line(text)
    have = _words(phrase)
    points = list(ad.get("selling_points") or [])
    used = [p for p in points if _words(p) and len(_words(p) & have) >= 0.5 * len(_words(p))]
    title = compose(" ".join(str(ad["title"]).split()), phrase, budget) if phrase else ""
    return {"suitable_user_info": suitable, "selling_points": used, "title": title}
