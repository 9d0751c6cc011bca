"""Grounded decoding under a channel's budget: nothing the decoder lets end is longer than the channel allows."""

from __future__ import annotations

import random

import pytest

from creator.channels.presets import CHANNELS, get_channel
from creator.decoding.words import AdVocabulary, WordConstraint
from creator.modeling.builders import train_tokenizer
from creator.records.types import Ad

ADS = [
    Ad(ad_id="a", title="Pilot G2 Retractable Premium Gel Ink Roller Ball Pens, Fine Point 0.7 mm, Black, 12 Count",
       brand="Pilot", selling_points=["Smooth writing for busy teachers", "Comfortable rubber grip"]),
    Ad(ad_id="s", title="Swingline Stapler, 20 Sheet Capacity, Black", brand="Swingline",
       selling_points=["Retractable and refillable", "Jam free stapling for the office"]),
    Ad(ad_id="j", title="パイロット ゲルインクボールペン 0.7mm 黒 12本入り", brand="パイロット",
       selling_points=["なめらかな書き心地", "Smooth writing"]),
]
CORPUS = [" ".join([a.title, *a.selling_points]) for a in ADS] * 40


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(CORPUS, vocab_size=800)


def walk(tok, vocab: AdVocabulary, rng: random.Random, steps: int = 120) -> tuple[str, bool]:
    """One random decode through the allowed tokens; the text as the backend decodes it, and whether it ended."""
    c, ids = WordConstraint(vocab), []
    for _ in range(steps):
        t = rng.choice(sorted(c.allowed()))
        c.advance(t)
        if t in vocab.eos_ids:
            break
        ids.append(t)
    return " ".join(tok.decode(ids, skip_special_tokens=True).split()), c.done


@pytest.mark.parametrize("name", [n for n, ch in CHANNELS.items() if ch.budget is not None])
def test_nothing_the_decoder_lets_end_breaks_the_channel_length(bpe, name):
    """A seeded property test: 600 random walks per channel over three ads (one Japanese, whose wide
    characters count 2 on Google channels), and budgets from 12 characters up to the channel's."""
    channel = get_channel(name)
    rng, ended, long_seen = random.Random(22), 0, 0
    for ad in ADS:
        for budget in sorted({12, 20, channel.max_chars}):
            vocab = AdVocabulary.build(bpe, ad, max_chars=budget, wide=channel.wide_counts_double)
            unbounded = AdVocabulary.build(bpe, ad)
            for _ in range(200 // 3 + 1):
                text, done = walk(bpe, vocab, rng)
                ended += done
                assert channel.width(text) <= budget, (name, budget, text)
                free, _ = walk(bpe, unbounded, rng)
                long_seen += channel.width(free) > budget
    assert ended >= 400  # the walks do end (EOS is forced when no word fits), not only run out of steps
    assert long_seen > 0  # without the budget the same walks do run past it: the test can fail


def test_wide_characters_count_double_in_the_budget(bpe):
    ad = ADS[2]
    narrow = AdVocabulary.build(bpe, ad, max_chars=14, wide=False)
    wide = AdVocabulary.build(bpe, ad, max_chars=14, wide=True)
    rng = random.Random(0)
    widths = [get_channel("google-rsa-headline").width(walk(bpe, wide, rng)[0]) for _ in range(100)]
    plain = [len(walk(bpe, narrow, rng)[0]) for _ in range(100)]
    assert max(widths) <= 14
    assert max(plain) <= 14
    # counted as Google counts, some narrow-budget titles are over 14
    assert any(get_channel("google-rsa-headline").width(walk(bpe, narrow, rng)[0]) > 14 for _ in range(200))


def test_budget_travels_in_the_spec_and_generic_leaves_the_spec_as_it_was(bpe):
    bounded = AdVocabulary.build(bpe, ADS[0], max_chars=30, wide=True)
    again = AdVocabulary.from_spec(bpe, bounded.spec)
    assert (again.max_chars, again.wide) == (30, True)
    assert "max_chars" not in AdVocabulary.build(bpe, ADS[0]).spec
    assert get_channel("generic").budget is None
    with pytest.raises(ValueError, match="max_chars"):
        AdVocabulary.build(bpe, ADS[0], max_chars=0)
