"""Generator: soft user tokens, LoRA SFT with aux losses, DPO, artefacts (tiny models, synthetic data)."""

from __future__ import annotations

import json

import numpy as np

D_USER = 8
INTERESTS = ["students", "offices", "artists"]
ADS = [
    ("a1", "Gel Pens, 12 Colors", "Smooth ink that dries fast. Pack of 12 pens in bright colors."),
    ("a2", "Heavy Duty Stapler, 20 Sheets", "Staples up to 20 sheets. Metal body built to last."),
    ("a3", "Sticky Notes, 3 x 3 in, 24 Pads", "24 pads of sticky notes. Strong adhesive, easy to peel."),
    ("a4", "Spiral Notebook, 100 Pages", "College ruled notebook with 100 pages and a sturdy cover."),
]


def _cot_rows(n_users: int = 12) -> list[dict]:
    rows = []
    for u in range(n_users):
        interest = INTERESTS[u % 3]
        split = "validation" if u >= n_users - 2 else "train"
        for ad_id, title, desc in ADS:
            rows.append(
                {
                    "user_id": f"u{u}",
                    "ad_id": ad_id,
                    "split": split,
                    "user_profile": json.dumps({"Long-term Interest": interest}),
                    "profile": json.dumps(
                        {"Long-term Interest": interest, "Preference": f"likes {interest} things"}
                    ),
                    "original_title": title,
                    "original_description": desc,
                    "prompt1": "",
                    "prompt2": "",
                    "response": f"{title} for {interest.capitalize()}",
                    "title_list": [f"{interest} item {i}" for i in range(3)],
                    "item_id_list": [f"h{i}" for i in range(3)],
                    "suitable_user_info": interest,
                    "selling_points_used": [],
                    "verdict": "{}",
                    "teacher": "fake",
                }
            )
    return rows


def _user_vectors(n_users: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, D_USER))
    out = {}
    for u in range(n_users):
        v = centers[u % 3] + 0.05 * rng.normal(size=D_USER)
        out[f"u{u}"] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


def _pair_rows(cot_rows: list[dict]) -> list[dict]:
    """chosen = the teacher's title; rejected = the same title with an invented count (a fact error)."""
    out = []
    for r in cot_rows:
        out.append(
            {
                "user_id": r["user_id"],
                "ad_id": r["ad_id"],
                "split": r["split"],
                "prompt1": "",
                "prompt2": "",
                "original_title": r["original_title"],
                "chosen": r["response"],
                "rejected": r["response"].replace(",", ", 99 Pack,", 1) + " Best Seller",
                "chosen_score": 1.0,
                "rejected_score": 0.0,
            }
        )
    return out
