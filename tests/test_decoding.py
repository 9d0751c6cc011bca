"""Grounded decoding: an ad's word vocabulary, the word-level constraint, and backends that never leave it."""

from __future__ import annotations

import pytest
import torch
from tiny_lm import build_model, build_tokenizer, prompt_embeds

from creator.backends import GenerationRequest, SamplingConfig
from creator.backends.hf import HFBackend
from creator.decoding import GLUE, AdVocabulary, WordConstraint, ad_words, allowed_mask
from creator.modeling.builders import train_tokenizer
from creator.types import Ad

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
