"""Grounded decoding: an ad's word vocabulary, the word-level constraint, and backends that never leave it."""

from __future__ import annotations

import pytest
import torch
from tiny_lm import build_model, build_tokenizer, prompt_embeds

from creator.backends import GenerationRequest, SamplingConfig
from creator.backends.hf import HFBackend
from creator.decoding.logits import allowed_mask
from creator.decoding.words import GLUE, AdVocabulary, WordConstraint, ad_words
from creator.modeling.builders import train_tokenizer
from creator.records.types import Ad

CORPUS = ["Pilot G2 Gel Pens, Fine Point 0.7 mm, Black, 12 Count", "Swingline Stapler, 20 Sheet Capacity, Black",
          "Smooth writing for busy teachers", "Retractable and refillable", "Post-it Notes, 3 x 3 in, Yellow",
          "Pens and Pen refills for school"] * 40
AD = Ad(ad_id="a", title="Pilot G2 Gel Pens, Fine Point 0.7 mm, Black, 12 Count", brand="Pilot",
        selling_points=["Smooth writing for busy teachers"])


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(CORPUS, vocab_size=600)


def fits(tok, vocab, text: str, **kw) -> bool:
    """Whether ``text`` can be decoded token by token under the constraint, ending with EOS."""
    c = WordConstraint(vocab, **kw)
    for t in tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]:
        if t not in c.allowed():
            return False
        c.advance(t)
    return c.done


def test_ad_words_keep_punctuated_and_bare_forms():
    words = ad_words(AD)
    assert {"Pens,", "Pens", "0.7", "mm,", "mm", "Smooth", "teachers"} <= set(words)
    assert set(GLUE) <= set(words)


def test_titles_made_of_ad_words_fit_and_foreign_words_do_not(bpe):
    vocab = AdVocabulary.build(bpe, AD)
    assert fits(bpe, vocab, "Pilot G2 Gel Pens, Fine Point 0.7 mm, Black, 12 Count")
    assert fits(bpe, vocab, "Smooth writing for busy teachers - Pilot G2 Gel Pens")
    assert fits(bpe, vocab, "Smooth writing for busy teachers: Pilot G2 Gel Pens")
    assert fits(bpe, vocab, "Black Gel Pens for teachers", spans=False)
    assert not fits(bpe, vocab, "Pilot G2 Gel Pens, 20 Count")          # a number the ad does not have
    assert not fits(bpe, vocab, "Swingline Gel Pens")                   # a brand the ad does not have
    assert not fits(bpe, vocab, "Pilot G2 Gel Pens, Fine Point 0.5 mm")  # a size the ad does not have
    assert not fits(bpe, vocab, "Pilot G2 Gel Pens, 20 Count", spans=False)
    assert not fits(bpe, vocab, "Pilot")                                # one word is not a title (min_words 2)


def test_spans_copy_phrases_and_jump_only_after_a_connective_or_punctuation(bpe):
    vocab = AdVocabulary.build(bpe, AD)
    assert fits(bpe, vocab, "Pilot G2 Gel Pens - Smooth writing")       # "-" closes the span
    assert fits(bpe, vocab, "Pilot G2 Gel Pens, Black, 12 Count")         # "Pens," closes it: segments reorder
    assert not fits(bpe, vocab, "Black Gel Pens for teachers")            # "Black" is never followed by "Gel"
    assert not fits(bpe, vocab, "Smooth writing teachers - Pilot G2")      # a word skipped inside a phrase
    assert fits(bpe, vocab, "Pilot G2 Gel Pens - Smooth writing - Black, 12 Count", max_spans=3)  # three spans
    assert not fits(bpe, vocab, "Pilot G2 Gel Pens - Smooth writing - Black, Fine Point", max_spans=3)  # a fourth
    assert fits(bpe, vocab, "Pilot G2 Gel Pens - Smooth writing - Black, Fine Point")  # no cap by default


def test_a_word_pair_is_never_written_twice(bpe):
    vocab = AdVocabulary.build(bpe, AD)
    assert fits(bpe, vocab, "Black Gel Pens - Black Pens", spans=False)
    assert not fits(bpe, vocab, "Black Gel Pens - Black Gel", spans=False)


def test_allowed_mask_rows_and_errors():
    m = allowed_mask([{1, 3}, None], vocab=5)
    assert m.tolist() == [[False, True, False, True, False], [True] * 5]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        allowed_mask([{7}], vocab=5)


@pytest.mark.parametrize("greedy", [True, False])
def test_hf_backend_only_writes_ad_words(greedy):
    tok = build_tokenizer()  # word-level: one token per word, so the check below is exact
    model = build_model(tok)
    ad = Ad(ad_id="a", title="blue gel pens for students", selling_points=["smooth ink"])
    vocab = AdVocabulary.build(tok, ad, glue=("and",))
    reqs = [GenerationRequest(f"r{i}", prompt_embeds(model, tok, p), vocab if i % 2 == 0 else None)
            for i, p in enumerate(["blue gel pens", "sticky notes for the office", "durable stapler"])]
    sampling = SamplingConfig(greedy=greedy, n=1 if greedy else 3, max_new_tokens=12, seed=3)
    out = HFBackend(model, tok, batch_size=8).generate(reqs, sampling)
    words = set(ad_words(ad, ("and",)))
    for text in out[0] + out[2]:
        assert text.split() and set(text.split()) <= words, text
    # the open row is unchanged by its constrained batch-mates: same text as when decoded alone
    assert HFBackend(model, tok, batch_size=8).generate([reqs[1]], sampling)[0] == out[1]
    # the same prompt decoded without grounding leaves the ad's words (otherwise the check above proves nothing)
    free = HFBackend(model, tok).generate([GenerationRequest("r0", reqs[0].prompt_embeds)], sampling)
    assert any(not set(t.split()) <= words for t in free[0])


def test_request_without_words_is_an_error(bpe):
    empty = AdVocabulary.build(bpe, Ad(ad_id="a", title="<u0> <u1>"), glue=())  # special tokens are never words
    with pytest.raises(ValueError, match="no words"):
        GenerationRequest("k", torch.zeros(2, 4), empty)


def test_no_word_more_than_twice_and_no_connective_after_a_connective(bpe):
    vocab = AdVocabulary.build(bpe, AD)
    assert fits(bpe, vocab, "Black Gel Pens - Fine Black Pens", spans=False)
    assert not fits(bpe, vocab, "Black Gel Pens - Fine Black Pens - Count Black", spans=False)  # "Black" thrice
    assert not fits(bpe, vocab, "Gel Pens for - Black", spans=False)  # "-" right after "for"


def test_a_title_ends_only_once_it_keeps_the_share_of_the_product_the_guard_asks_for(bpe):
    # topic_words(AD) = {pilot, gel, pen, point, fine, black, count}: 7 words, so a title must keep 2 (2/7 >= 0.2)
    vocab = AdVocabulary.build(bpe, AD)
    assert vocab.topic == {"pilot", "gel", "pen", "point", "fine", "black", "count"}
    assert not fits(bpe, vocab, "Smooth writing for busy teachers")        # none of the product's words
    assert not fits(bpe, vocab, "Smooth writing for busy teachers - Pilot")  # 1 of 7 < 0.2
    assert fits(bpe, vocab, "Smooth writing for busy teachers - Pilot G2 Gel")  # 2 of 7
    assert fits(bpe, vocab, "Fine Point 0.7 mm")
    off = AdVocabulary.build(bpe, AD, min_topic_share=0.0)
    assert fits(bpe, off, "Smooth writing for busy teachers")
    with pytest.raises(ValueError, match="min_topic_share"):
        AdVocabulary.build(bpe, AD, min_topic_share=1.5)


def test_a_long_title_off_topic_must_jump_back_to_the_product(bpe):
    vocab = AdVocabulary.build(bpe, AD)
    # 6 words, none of the product's: the next span must start on a word that names it
    assert fits(bpe, vocab, "Smooth writing for busy teachers - Gel Pens, Black", steer_after=6)
    assert not fits(bpe, vocab, "Smooth writing for busy teachers - 0.7 mm, Black, 12 Count", steer_after=6)
    assert fits(bpe, vocab, "Smooth writing for busy teachers - 0.7 mm, Black, 12 Count", steer_after=None)


def test_no_word_twice_in_a_row_and_no_span_starts_or_title_ends_on_a_function_word(bpe):
    ad = Ad(ad_id="b", title="Pilot Gel Pens, Black", brand="Pilot",
            selling_points=["Smooth ink for the busy office", "The best pens"])
    vocab = AdVocabulary.build(bpe, ad)
    assert fits(bpe, vocab, "Smooth ink for the busy office - Pilot Gel Pens")  # "the" inside its phrase
    assert fits(bpe, vocab, "The best pens - Pilot Gel Pens")                    # a text of the ad starts so
    assert not fits(bpe, vocab, "Pilot Gel Pens - the busy office")              # a span that starts on "the"
    assert not fits(bpe, vocab, "Pilot Gel Pens, Black -")                       # ends on a connective
    assert not fits(bpe, vocab, "Pilot Gel Pens, Black, Black", spans=False)     # "Black" twice in a row
    assert not fits(bpe, vocab, "- Pilot Gel Pens")                              # starts on a connective


def test_every_title_the_constraint_lets_end_passes_the_guards_off_topic_rule(bpe):
    """Random walks through the allowed tokens of three ads: the decoder's topic rule and the guard agree on
    every finished title, and a title is only cut off topic when no allowed word was left."""
    import random

    from creator.guard.check import Guard, GuardConfig

    guard = Guard(GuardConfig(min_words=0, check_banned_attributes=False))
    ads = [AD, Ad(ad_id="s", title="Swingline Stapler, 20 Sheet Capacity, Black", brand="Swingline",
                  selling_points=["Retractable and refillable", "Smooth writing for busy teachers"]),
           Ad(ad_id="n", title="Post-it Notes, 3 x 3 in, Yellow", selling_points=["Pens and Pen refills for school"])]
    rng, finished, forced = random.Random(0), 0, 0
    for ad in ads:
        vocab = AdVocabulary.build(bpe, ad)
        for _ in range(60):
            c = WordConstraint(vocab)
            for _step in range(80):
                allowed = sorted(c.allowed())
                t = rng.choice(allowed)
                if t in vocab.eos_ids:
                    pending = [c.node.word] if c.node is not None and c.node.word else []
                    forced += allowed == list(vocab.eos_ids) and not vocab.on_topic(c.words + pending)
                c.advance(t)
                if c.done:
                    break
            if not c.done:
                continue
            finished += 1
            title = " ".join(c.words)  # the guard lower-cases and drops trailing punctuation as word_key does
            off = any(f.rule == "off_topic" for f in guard.check(title, ad).failures)
            assert off == (not vocab.on_topic(c.words)), (title, c.words)
    assert finished >= 120
    assert forced <= finished * 0.1


def test_no_connective_right_after_a_function_word(bpe):
    ad = Ad(ad_id="b", title="Pilot Gel Pens, Black", brand="Pilot", selling_points=["Smooth ink for the busy office"])
    vocab = AdVocabulary.build(bpe, ad)
    assert fits(bpe, vocab, "Smooth ink for the busy office - Pilot Gel Pens")
    assert not fits(bpe, vocab, "Smooth ink for the - Pilot Gel Pens")  # "the" then a connective


def test_vocabulary_spec_rebuilds_it_and_a_row_constraint_masks_like_the_word_constraint(bpe):
    """What a serving engine in another process gets: ``spec`` is plain data, ``from_spec`` gives the same
    vocabulary, and ``RowConstraint`` (called with the growing list of written tokens) leaves exactly the
    tokens ``WordConstraint.allowed()`` allows."""
    import json

    from creator.decoding.logits import RowConstraint

    vocab = AdVocabulary.build(bpe, AD, min_topic_share=0.3)
    again = AdVocabulary.from_spec(bpe, json.loads(json.dumps(vocab.spec)))
    assert (again.token_ids, again.topic, again.min_topic_share, again.sources) == (
        vocab.token_ids, vocab.topic, 0.3, vocab.sources)
    row, ref = RowConstraint(WordConstraint(again)), WordConstraint(vocab)
    written: list[int] = []
    for t in bpe("Smooth writing for busy teachers - Pilot G2 Gel Pens", add_special_tokens=False)["input_ids"]:
        out = row(written, torch.zeros(len(bpe)))
        assert set(torch.nonzero(out == 0).flatten().tolist()) == ref.allowed()
        assert t in ref.allowed()
        ref.advance(t)
        written.append(t)


def test_no_claim_the_ad_never_states_is_spelled_across_spans(bpe):
    """"for" (a connective) + "FREE" (from "Make FREE unlimited calls") spells "for free", a claim the ad never
    makes: the decoder will not write it, and the guard would have rejected it."""
    from creator.guard.check import Guard

    ad = Ad(ad_id="m", title="magicJack Digital Phone Service", brand="magicJack",
            selling_points=["Setup is easy", "Make FREE unlimited calls"])
    vocab = AdVocabulary.build(bpe, ad)
    assert ("for", "free") in vocab.blocked and ("free", "shipping") not in vocab.blocked  # "shipping": no word
    bad, good = "Setup is easy for FREE: magicJack Digital Phone Service", "Make FREE unlimited calls - magicJack"
    assert [f.rule for f in Guard().check(bad, ad).failures] == ["ungrounded_claim"]
    assert Guard().check(good, ad).passed
    assert not fits(bpe, vocab, bad) and fits(bpe, vocab, good)
    assert fits(bpe, AdVocabulary.build(bpe, ad, blocked_claims=[]), bad)  # the rule is what stops it
    again = AdVocabulary.from_spec(bpe, vocab.spec)
    assert again.blocked == vocab.blocked
