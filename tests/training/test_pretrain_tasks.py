"""pretrain-lm's task examples: the generator's prompt for every ad, followed by a title made of that prompt."""

from __future__ import annotations

import re

from creator.io.catalog import Catalog
from creator.modeling.builders import train_tokenizer
from creator.modeling.generator import GeneratorConfig, prompt_content
from creator.records.types import Ad
from training.pretrain_lm import encode_tasks, pad_rows, task_examples

ADS = [
    Ad(ad_id="a1", title="Pilot G2 Gel Pens, Fine Point, Black, 12 Count", brand="Pilot",
       selling_points=["Smooth writing for busy teachers and students", "Retractable and refillable design"]),
    Ad(ad_id="a2", title="Swingline Stapler, 20 Sheet Capacity", selling_points=[]),
]


def catalog() -> Catalog:
    return Catalog(ads={a.ad_id: a for a in ADS}, users={})


def test_targets_are_the_trimmed_title_and_title_hook_combinations_made_of_the_prompt():
    pairs = task_examples(catalog(), per_ad=5, num_user_tokens=4)
    by_prompt: dict[str, list[str]] = {}
    for content, target in pairs:
        by_prompt.setdefault(content, []).append(target)
    first, second = (prompt_content(a, GeneratorConfig(num_user_tokens=4)) for a in ADS)
    assert by_prompt[second] == ["Swingline Stapler, 20 Sheet Capacity"]  # no selling points: the title only
    targets = by_prompt[first]
    assert targets[0] == ADS[0].title and len(targets) == 5
    # hooks are cut to the length budget (title + 40 characters) at a phrase boundary
    assert "Pilot G2 Gel Pens, Fine Point, Black, 12 Count - Smooth writing for busy teachers" in targets
    assert "Retractable and refillable design: Pilot G2 Gel Pens, Fine Point, Black, 12 Count" in targets
    prompt_words = set(re.findall(r"[\w.]+", first))
    for t in targets:  # every word of every target is in its prompt
        assert set(re.findall(r"[\w.]+", t)) <= prompt_words, t
    assert "<u0><u1><u2><u3>" in first


def test_per_ad_caps_the_targets():
    pairs = task_examples(catalog(), per_ad=2, num_user_tokens=4)
    assert len(pairs) == 2 + 1


def test_encode_masks_the_prompt_and_skips_what_does_not_fit():
    pairs = task_examples(catalog(), per_ad=2, num_user_tokens=4)
    tok = train_tokenizer([c + "\n" + t for c, t in pairs] * 20, vocab_size=400)
    rows = encode_tasks(tok, pairs, max_len=512)
    assert len(rows) == len(pairs)
    for row, (_, target) in zip(rows, pairs, strict=True):
        labelled = [t for t in row["labels"] if t != -100]
        n_prompt = len(row["labels"]) - len(labelled)
        assert row["labels"][:n_prompt] == [-100] * n_prompt  # the prompt is never a target
        assert labelled == row["input_ids"][n_prompt:] and labelled[-1] == tok.eos_token_id
        assert tok.decode(labelled, skip_special_tokens=True) == target
    short = encode_tasks(tok, pairs, max_len=20)
    assert short == []  # every prompt is longer than 20 tokens: skipped (and logged), never truncated


def test_pad_rows_spelled_out():
    batch = pad_rows([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
