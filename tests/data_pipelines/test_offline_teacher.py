"""The offline teacher: profiles without facts, titles that add nothing, deterministic candidates."""

from __future__ import annotations

import asyncio
import json

import pytest

from creator.guard.check import Guard
from creator.records.facts import ad_facts
from creator.records.types import Ad
from data_pipelines.teachers import TeacherRequest
from data_pipelines.teachers.offline import OfflineTeacher

HISTORY = [
    "Pilot G2 Retractable Gel Pens, Fine Point 0.7mm, Black, 12-Pack",
    "Pilot G2 Retractable Gel Pens, Fine Point, Assorted Colors, 8-Pack",
    "Moleskine Classic Notebook, Hard Cover, Large, Ruled, Black",
    "Women's Daily Planner 2024, Weekly and Monthly, Floral",
]
BRANDS = ["Pilot", "Moleskine", "Sharpie", "Wireless Co"]


@pytest.fixture(scope="module")
def teacher(minilm) -> OfflineTeacher:
    return OfflineTeacher(minilm, known_brands=BRANDS)


def ask(teacher: OfflineTeacher, task: str, payload: dict) -> dict:
    req = TeacherRequest(key="r", task=task, messages=[], payload=payload)
    result = asyncio.run(teacher.generate([req]))[0]
    assert result.ok, result
    return json.loads(result.text)


def test_profile_has_interests_but_no_numbers_brands_or_personal_attributes(teacher: OfflineTeacher) -> None:
    profile = ask(
        teacher, "profile", {"history": HISTORY, "history_brands": ["Pilot", "Pilot", "Moleskine", ""]}
    )
    assert profile["long_term_interests"][0] == "retractable gel pens"  # two of four items: the biggest group
    assert profile["short_term_interests"][0] == "daily planner"  # the newest item, "women's" removed
    text = json.dumps(profile).lower()
    assert not any(ch.isdigit() for ch in text)
    assert "pilot" not in text and "moleskine" not in text and "women" not in text


def _ad(title: str, points: list[str], brand: str = "Acme") -> dict:
    return {"ad_id": "a", "title": title, "brand": brand, "selling_points": points, "facts": []}


def test_candidates_differ_stay_in_budget_and_pass_the_guard(teacher: OfflineTeacher) -> None:
    ad = _ad(
        "Sharpie Permanent Markers, Ultra Fine Point, Black, 12 Count",
        [
            "Quick-drying ink resists fading and water",
            "Writes on paper, plastic, metal and glass",
            "AP certified non-toxic ink for safe everyday use",
        ],
        brand="Sharpie",
    )
    profile = {"long_term_interests": ["retractable gel pens"], "short_term_interests": ["daily planner"]}
    titles = [
        ask(
            teacher,
            "cot_title",
            {
                "ad": ad,
                "history": HISTORY,
                "profile": profile,
                "candidate": k,
                "max_chars": 90,
                "max_added_chars": 30,
            },
        )["title"]
        for k in range(3)
    ]
    assert len(set(titles)) == 3
    ad_obj = Ad(ad_id="a", title=ad["title"], brand="Sharpie", selling_points=ad["selling_points"])
    ad_obj.facts = ad_facts(ad_obj)
    guard = Guard(known_brands=BRANDS)
    for t in titles:
        assert len(t) <= 90 and len(t) - len(ad["title"]) <= 30
        assert guard.check(t, ad_obj).passed, t
    again = ask(
        teacher,
        "cot_title",
        {
            "ad": ad,
            "history": HISTORY,
            "profile": profile,
            "candidate": 1,
            "max_chars": 90,
            "max_added_chars": 30,
        },
    )["title"]
    assert again == titles[1]  # deterministic


def test_thousands_separators_survive_reordering(teacher: OfflineTeacher) -> None:
    ad = _ad("Acme Standard Staples, 1/4 Inch Leg, Total 10,000 Staples", [])
    out = ask(
        teacher, "cot_title", {"ad": ad, "history": HISTORY, "profile": {}, "candidate": 0, "max_chars": 120}
    )
    assert "10,000" in out["title"] and out["title"] != ad["title"]


def test_last_resort_adds_no_claim_or_brand(teacher: OfflineTeacher) -> None:
    """One title segment, no selling points, and the user's only interest carries a claim and a brand."""
    ad = _ad("Acme Gray Ink Cartridge", [])
    profile = {"long_term_interests": ["wireless co presenters"], "short_term_interests": []}
    out = ask(teacher, "cot_title", {"ad": ad, "history": HISTORY, "profile": profile, "candidate": 0})
    assert out["title"] == "Acme Gray Ink Cartridge - Picked for You"


PROFILE_IN_A_FRESH_PROCESS = """
import json, sys
import numpy as np
from data_pipelines.teachers.offline import OfflineTeacher

class Lengths:  # any fixed encoder: the test is about ranking words, not about embeddings
    def encode(self, texts):
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

history = json.loads(sys.argv[1])
print(json.dumps(OfflineTeacher(Lengths()).profile(history)["preferences"]))
"""


def test_profile_is_the_same_in_every_process():
    """Six words tie at two titles each and only three are kept: the tie must not be broken by a set's order,
    which changes with each process's string hashing (and would change every model trained on the CoT)."""
    import subprocess
    import sys

    history = [
        "Canvas Ledger Folder Marker",
        "Canvas Ledger Folder Marker",
        "Velvet Sketch Binder Crayon",
        "Velvet Sketch Binder Crayon",
        "Ribbon Journal Tablet Eraser",
        "Ribbon Journal Tablet Eraser",
    ]
    outs = set()
    for hash_seed in ("1", "2", "3"):
        run = subprocess.run(
            [sys.executable, "-c", PROFILE_IN_A_FRESH_PROCESS, json.dumps(history)],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": hash_seed},
            check=True,
        )
        outs.add(run.stdout.strip())
    assert len(outs) == 1, outs
    assert len(json.loads(outs.pop())) == 3


PLANTED_AD = {
    "ad_id": "p",
    "title": "Acme Rollerball Pen Set, Medium Point",
    "brand": "Acme",
    "selling_points": [
        "Built with a heavy steel barrel for busy office desks",
        "Refillable: takes standard ink refills, so the pens last for years",
        "Bright assorted colors for drawing, sketching and art journaling",
    ],
    "facts": [],
}
PLANTED = {  # history (oldest first) -> the selling point it favours
    "refill": (
        ["Gel Ink Refills, Blue", "Ballpoint Pen Refills, Black", "Printer Ink Cartridge Refill", "Toner Cartridge"],
        1,
    ),
    "art": (
        ["Sketch Pad for Drawing", "Watercolor Paint Set for Artists", "Drawing Pencils for Sketching", "Art Journal"],
        2,
    ),
    "office": (
        ["Steel Desk Organizer for Office", "Office Stapler, Steel", "Business Card Holder for Desk", "Office Tape"],
        0,
    ),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_planted_users_get_their_favoured_selling_point(teacher: OfflineTeacher, kind: str) -> None:
    history, favoured = PLANTED[kind]
    out = ask(teacher, "cot_title", {"ad": PLANTED_AD, "history": history, "profile": {}, "candidate": 0,
                                     "max_chars": 120, "max_added_chars": 60})
    assert out["selling_points"] == [PLANTED_AD["selling_points"][favoured]], out
    assert out["title"] != PLANTED_AD["title"]


def test_users_of_one_ad_get_different_titles_unless_profiles_agree(teacher: OfflineTeacher) -> None:
    def title(history: list[str]) -> str:
        return ask(teacher, "cot_title", {"ad": PLANTED_AD, "history": history, "profile": {}, "candidate": 0,
                                          "max_chars": 120, "max_added_chars": 60})["title"]

    titles = {kind: title(h) for kind, (h, _) in PLANTED.items()}
    assert len(set(titles.values())) == 3
    # the same interests in another order: the refill angle still leads
    assert "refill" in title(PLANTED["refill"][0][::-1]).lower()


def test_similarity_mode_is_the_earlier_teacher(minilm) -> None:
    old = OfflineTeacher(minilm, known_brands=BRANDS, personalize="similarity")
    assert old.name == "offline-minilm-v2" and OfflineTeacher(minilm).name != old.name
    with pytest.raises(ValueError, match="personalize must be one of"):
        OfflineTeacher(minilm, personalize="lucky")


def test_offline_teacher_model_is_checked_with_a_fix() -> None:
    from data_pipelines.cot_config import CoTConfig

    assert CoTConfig(data="d", out="o", teacher_model="similarity").teacher_model == "similarity"
    with pytest.raises(ValueError, match="profile .* or similarity"):
        CoTConfig(data="d", out="o", teacher="offline", teacher_model="gemma-270m")
