"""Grounded decoding: the generator may only write words that the ad itself contains.

A title that states no fact the ad does not support is, first of all, a title whose words come from
the ad. ``AdVocabulary.build(tokenizer, ad)`` collects the whitespace-separated words of the ad's
title, brand and selling points (also without their trailing punctuation), plus a short list of
connectives (``GLUE``: "for", "with", "-", ":" ...), and stores each word as the token sequence the
tokenizer gives it after a space (and, for the first word of the title, without one).

``WordConstraint`` walks that vocabulary as a trie while a title is decoded: inside a word only the
tokens that continue some allowed word may follow; at a word boundary any allowed word may start,
or the title may end. So every word of the output is a word of the ad (numbers, sizes, model numbers
and brands included) or a connective, and no word pair is written twice (no "Black - Black - Black"
loops). A weak LM then cannot invent "Canon PC-240" for a Brother printer; what it can still do is
put ad words in a misleading order ("8.9 x 8.9"), which the guard catches afterwards.

The transformers backend applies ``WordConstraint`` exactly; vLLM runs it in a logits processor
(``creator.decoding.vllm``), rebuilding the vocabulary from ``AdVocabulary.spec``, and also gets
the vocabulary's token set (``SamplingParams(allowed_token_ids=...)``). The guard is the same after both.

    >>> from creator.modeling.builders import train_tokenizer
    >>> tok = train_tokenizer(["Gel pens, 12 colors for school", "Stapler with 20 sheet capacity"] * 40,
    ...                       vocab_size=300)
    >>> vocab = AdVocabulary.build(tok, Ad(ad_id="a", title="Gel pens, 12 colors"))
    >>> def fits(text):
    ...     c = WordConstraint(vocab)
    ...     for t in tok(text, add_special_tokens=False)["input_ids"]:
    ...         if t not in c.allowed():
    ...             return False
    ...         c.advance(t)
    ...     return True
    >>> fits("Gel pens for 12 colors"), fits("Gel pens for 20 colors"), fits("Stapler for 12 colors")
    (True, False, False)

Where the issue was silent: grounded decoding is on by default (``GeneratorConfig.grounded``); switch
it off for a large instruction-tuned base that paraphrases well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from creator.channels.presets import display_width
from creator.guard.check import GuardConfig, topic_kept, topic_words
from creator.guard.grounding import flat_words, unstated_claims
from creator.records.types import Ad

# Connectives a rewritten title may add between pieces of the ad. No facts: nothing here is a number, unit,
# brand, material or claim, so the guard's fact rules cannot be broken by them.
GLUE = ("for", "with", "and", "-", ":", "&")
# Words that neither start a new span nor end a title ("... and the", "Smooth and a"): they only make sense
# inside a phrase they were copied with. Compared by ``word_key``.
FUNCTION_WORDS = frozenset(
    "a an the and or but nor for with without from to of in on at by as into onto over under than then so "
    "is are was were be been it its this that these those your you our we they their his her my me us who "
    "which what when where while if not no".split()
)
_TRAILING = re.compile(r"[,.;:!?)]+$")


def ad_words(ad: Ad, glue: tuple[str, ...] = GLUE) -> list[str]:
    """The words a grounded title of ``ad`` may use: its title, brand and selling points, then ``glue``."""
    words: dict[str, None] = {}
    for text in (ad.title, ad.brand, *ad.selling_points):
        for word in (text or "").split():
            words[word] = None
            bare = _TRAILING.sub("", word)
            if bare and bare.count("(") == bare.count(")"):
                words[bare] = None
                words[bare + ":"] = None  # "hook: title", the teacher's other way of joining two pieces
    for word in glue:
        words[word] = None
    return list(words)


def word_key(word: str) -> str:
    """What the repetition rules compare: the word without trailing punctuation, lower-cased ("Black," = "black")."""
    return _TRAILING.sub("", word).lower() or word


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    word: str | None = None  # set where a word ends: its word_key
    closes: bool = False  # the word ends in ":" "," ";" or ".": a new span may start after it
    width: int = 0  # where a word ends: its characters as the channel counts them (no leading space)

    @property
    def word_end(self) -> bool:
        return self.word is not None


@dataclass
class AdVocabulary:
    """The allowed words of one ad as token sequences, in a trie; ``first`` holds the title-initial forms."""

    spaced: _Node
    first: _Node
    eos_ids: tuple[int, ...]
    token_ids: tuple[int, ...]  # every token of the vocabulary, EOS included (the vLLM fallback)
    words: int
    glue: frozenset[str] = frozenset()
    sources: tuple[tuple[str, ...], ...] = ()  # word_keys of title, brand and each selling point, in order
    occurrences: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # key -> (text, position)
    # the guard's off_topic rule: the ad title's content words + brand words (``creator.guard.check.topic_words``),
    # which of them each word_key keeps, and the share a title must keep before it may end
    topic: frozenset[str] = frozenset()
    covers: dict[str, frozenset[str]] = field(default_factory=dict)
    min_topic_share: float = 0.0
    # claims the ad never states that its words could spell across spans ("for" + "FREE"), as the claim rule
    # reads text (``creator.guard.grounding.flat_words``), and the flat words of each word_key
    blocked: tuple[tuple[str, ...], ...] = ()
    flat: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the channel's character budget (``creator.channels.presets.Channel.budget``): no word is started that would take
    # the title past it, so every title the decoder lets end fits; ``wide``: double-width characters count 2
    max_chars: int | None = None
    wide: bool = False
    # what it was built from, as plain data: a serving engine in another process rebuilds it with ``from_spec``
    spec: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, tokenizer: Any, ad: Ad, *, glue: tuple[str, ...] = GLUE,
              min_topic_share: float = GuardConfig.min_title_overlap,
              blocked_claims: list[str] | None = None, max_chars: int | None = None,
              wide: bool = False) -> AdVocabulary:
        """``min_topic_share``: the share of ``topic_words(ad)`` a title keeps before EOS is allowed (the
        guard's ``min_title_overlap``, 0.2 by default; 0 turns the rule off). ``blocked_claims``: the claims
        the ad never states (default ``creator.guard.grounding.unstated_claims(ad)``, description included).
        ``max_chars``/``wide``: the channel's budget and how it counts (``Channel.budget``,
        ``Channel.wide_counts_double``); None leaves titles unbounded, as the generic channel does."""
        if not 0.0 <= min_topic_share <= 1.0:
            raise ValueError(f"min_topic_share must be in [0, 1], got {min_topic_share}; use 0 to turn it off")
        if max_chars is not None and max_chars < 1:
            raise ValueError(f"max_chars must be >= 1 or None, got {max_chars}; use None for no budget")
        count = display_width if wide else len
        words = ad_words(ad, glue)
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer has no eos token; grounded decoding needs one to end a title")
        special = set(getattr(tokenizer, "all_special_ids", []) or []) - {eos}
        spaced, first, tokens = _Node(), _Node(), {int(eos)}
        encoded = tokenizer([" " + w for w in words] + words, add_special_tokens=False)["input_ids"]
        for i, ids in enumerate(encoded):
            if not ids or special & set(ids):
                continue
            node = spaced if i < len(words) else first
            for t in ids:
                node = node.children.setdefault(int(t), _Node())
            surface = words[i % len(words)]
            node.word = word_key(surface)
            node.closes = node.closes or surface[-1] in ":,;."
            node.width = max(node.width, count(surface))
            tokens.update(int(t) for t in ids)
        sources = tuple(tuple(word_key(w) for w in t.split()) for t in (ad.title, ad.brand, *ad.selling_points) if t)
        occurrences: dict[str, list[tuple[int, int]]] = {}
        for t, src in enumerate(sources):
            for i, key in enumerate(src):
                occurrences.setdefault(key, []).append((t, i))
        flat = {key: tuple(flat_words(key)) for key in {word_key(w) for w in words}}
        spellable = {f for fw in flat.values() for f in fw}
        claims = unstated_claims(ad) if blocked_claims is None else list(blocked_claims)
        blocked = [c for c in claims if len(c.split()) > 1 and set(c.split()) <= spellable]
        spec = {"title": ad.title, "brand": ad.brand, "selling_points": list(ad.selling_points), "glue": list(glue),
                "min_topic_share": min_topic_share, "blocked_claims": blocked}
        if max_chars is not None:  # only then, so specs (and vLLM's cache keys) of unbounded runs stay as they were
            spec |= {"max_chars": max_chars, "wide": wide}
        topic = frozenset(topic_words(ad))
        covers = {key: frozenset(kept) for key in {word_key(w) for w in words} if (kept := topic_kept(key, topic))}
        return cls(spaced=spaced, first=first, eos_ids=(int(eos),), token_ids=tuple(sorted(tokens)),
                   words=len(words), glue=frozenset(word_key(g) for g in glue), sources=sources,
                   occurrences={k: tuple(v) for k, v in occurrences.items()}, topic=topic, covers=covers,
                   min_topic_share=min_topic_share if topic else 0.0, spec=spec,
                   blocked=tuple(tuple(c.split()) for c in blocked), flat=flat, max_chars=max_chars, wide=wide)

    @classmethod
    def from_spec(cls, tokenizer: Any, spec: dict[str, Any]) -> AdVocabulary:
        """The vocabulary ``build`` made from ``spec`` (its ``.spec``), with the same tokenizer."""
        ad = Ad(ad_id="", title=spec["title"], brand=spec.get("brand", ""),
                selling_points=list(spec.get("selling_points", [])))
        return cls.build(tokenizer, ad, glue=tuple(spec.get("glue", GLUE)),
                         min_topic_share=float(spec.get("min_topic_share", GuardConfig.min_title_overlap)),
                         blocked_claims=list(spec.get("blocked_claims", [])), max_chars=spec.get("max_chars"),
                         wide=bool(spec.get("wide", False)))

    def claim_completions(self, written: list[str]) -> set[str]:
        """Words that would complete, after ``written``, a claim the ad never states."""
        out: set[str] = set()
        if not self.blocked:
            return out
        tail = [f for w in written[-4:] for f in self.flat.get(w, (w,))]
        for phrase in self.blocked:
            n = len(phrase)
            for key, fw in self.flat.items():
                if not set(fw) & set(phrase):
                    continue
                seq = tail + list(fw)
                # an occurrence that uses at least one of the new word's flat words
                if any(tuple(seq[i:i + n]) == phrase for i in range(max(0, len(tail) - n + 1), len(seq) - n + 1)):
                    out.add(key)
        return out

    def kept(self, written: list[str]) -> set[str]:
        """The ad's topic words that a title of these word_keys keeps."""
        return set().union(*(self.covers.get(w, frozenset()) for w in written))

    def on_topic(self, written: list[str]) -> bool:
        """Whether a title of these word_keys keeps enough of the ad's topic words to pass ``off_topic``."""
        if self.min_topic_share <= 0:
            return True
        kept = self.kept(written)
        return bool(kept) and len(kept) / len(self.topic) >= self.min_topic_share  # the guard's own comparison


class WordConstraint:
    """Decoding state of one title under an ``AdVocabulary``: ``allowed()`` token ids, then ``advance(t)``.

    Rules: every word is a word of the vocabulary; at least ``min_words`` words before EOS; no word (compared
    by ``word_key``) more than ``max_repeats`` times, nor twice in a row; no word pair twice; no connective
    right after a connective or a function word; no word that would complete a claim the ad never states
    ("for" + "FREE" = "for free"); no new span that starts with a function word ("and the",
    "for a"), and no title that ends on one or on a connective; no EOS before the title keeps the share of
    the ad title's words that the guard's ``off_topic`` rule asks for (``AdVocabulary.min_topic_share``),
    and once a title has ``steer_after`` words without it, a new span must start on a word that names more
    of the product, so a wandering title comes back to its product instead of running out of tokens.

    With ``spans`` (the default) the title is also made of *spans* of the ad's texts: after a word, the next
    one continues the same passage of the title or a selling point, unless a connective or a word ending in
    ":" "," ";" "." lets a new one start anywhere (``max_spans`` caps how many; off by default, since on
    held-out Office_Products titles a cap of 3 raised the fact-check failures from 10% to 17.5%: the model
    ended titles early instead). So a hook is copied as a phrase ("Fine tip permanent marker"), never
    re-assembled from scattered words. A token is allowed only if some word it can still complete obeys
    the rules."""

    def __init__(self, vocab: AdVocabulary, *, min_words: int = 2, max_repeats: int = 2, spans: bool = True,
                 max_spans: int | None = None, steer_after: int | None = 6) -> None:
        self.vocab = vocab
        self.steer_after = steer_after
        self.min_words = min_words
        self.max_repeats = max_repeats
        self.spans = spans and bool(vocab.sources)
        self.max_spans = max_spans
        self.node: _Node | None = None  # None: at a word boundary
        self.words: list[str] = []  # word_keys written so far
        # span state: where the current span ends in the sources, whether the next word may jump elsewhere
        # (at the start, after a connective or a word ending in punctuation), and how many spans were started
        self.positions: frozenset[tuple[int, int]] = frozenset()
        self.jump = True
        self.n_spans = 0
        self.banned: set[str] = set()  # words the current word may not be
        self.eligible: set[str] | None = None  # words the current word may be (None: any)
        self.done = False
        self.used = 0  # characters of the words written so far, with the spaces between them
        self.room: int | None = None  # characters the current word may take (None: no budget)

    def _room(self, written: list[str], used: int) -> int | None:
        """Characters the next word may take: the budget minus what is written and the space before it."""
        if self.vocab.max_chars is None:
            return None
        return self.vocab.max_chars - used - (1 if written else 0)

    def _banned(self, written: list[str]) -> set[str]:
        banned = {w for w in set(written) if written.count(w) >= self.max_repeats}
        if written:
            last = written[-1]
            banned |= {written[i + 1] for i in range(len(written) - 1) if written[i] == last} | {last}
            if last in self.vocab.glue or last in FUNCTION_WORDS:  # "and -", "use the :": the phrase must go on
                banned |= set(self.vocab.glue)
        return banned

    def _rules(self, written: list[str], state: tuple[frozenset[tuple[int, int]], bool, int]
               ) -> tuple[set[str], set[str] | None]:
        """(banned, eligible) for the next word: the repetition rules, the span rules, and no new span that
        starts with a function word (a connective at the very start neither, unless a text of the ad starts
        with it)."""
        banned, eligible = self._banned(written), self._after(state)
        banned |= self.vocab.claim_completions(written)
        if self.spans and eligible is None:  # the next word may start a new span
            starters = FUNCTION_WORDS - self.vocab.glue if written else FUNCTION_WORDS | self.vocab.glue
            keep = self._continuations(state[0]) | {src[0] for src in self.vocab.sources if src and not written}
            banned |= starters - keep
        if (eligible is None and self.steer_after is not None and len(written) >= self.steer_after
                and not self.vocab.on_topic(written)):
            # long and still off topic: a new span must start on a word that names more of the product
            kept = self.vocab.kept(written)
            eligible = {w for w, c in self.vocab.covers.items() if c - kept}
        return banned, eligible

    def _continuations(self, positions: frozenset[tuple[int, int]]) -> set[str]:
        src = self.vocab.sources
        return {src[t][i + 1] for t, i in positions if i + 1 < len(src[t])}

    def _after(self, state: tuple[frozenset[tuple[int, int]], bool, int]) -> set[str] | None:
        """Words that may come next in span mode: the span's continuations and connectives, and any word when
        a jump is allowed and fewer than ``max_spans`` spans were started; None (any word) without spans."""
        if not self.spans:
            return None
        positions, jump, n_spans = state
        if jump and (self.max_spans is None or n_spans < self.max_spans):
            return None
        return self._continuations(positions) | set(self.vocab.glue)

    def _next_state(self, word: str, closes: bool) -> tuple[frozenset[tuple[int, int]], bool, int]:
        """(positions, jump, n_spans) after writing ``word``: a continuation extends the span, a connective
        keeps it and allows a jump, any other word starts a new span where it occurs."""
        if not self.spans:
            return self.positions, True, self.n_spans
        src = self.vocab.sources
        cont = frozenset((t, i + 1) for t, i in self.positions if i + 1 < len(src[t]) and src[t][i + 1] == word)
        if cont:
            return cont, closes, self.n_spans
        if word in self.vocab.glue:
            return self.positions, True, self.n_spans
        return frozenset(self.vocab.occurrences.get(word, ())), closes, self.n_spans + 1

    def _starts(self, written: list[str], state: tuple[frozenset[tuple[int, int]], bool, int], used: int
                ) -> set[int]:
        """First tokens of the words that may follow ``written`` (and still fit the budget), and EOS once there
        are enough words; EOS also when no word may follow, so a title never runs past its budget."""
        root = self.vocab.spaced if written else self.vocab.first
        banned, eligible = self._rules(written, state)
        room = self._room(written, used)
        out = {t for t, child in root.children.items() if _any_word(child, banned, eligible, room)}
        may_end = (len(written) >= self.min_words and self.vocab.on_topic(written)
                   and written[-1] not in FUNCTION_WORDS | self.vocab.glue)
        if may_end or not out:
            out |= set(self.vocab.eos_ids)
        return out

    def allowed(self) -> set[int]:
        if self.done:
            return set(self.vocab.eos_ids)
        if self.node is None:  # at a word boundary
            return self._starts(self.words, (self.positions, self.jump, self.n_spans), self.used)
        out = {t for t, child in self.node.children.items()
               if _any_word(child, self.banned, self.eligible, self.room)}
        node = self.node
        if (node.word_end and node.word not in self.banned and (self.eligible is None or node.word in self.eligible)
                and (self.room is None or node.width <= self.room)):  # may stop here
            out |= self._starts([*self.words, node.word], self._next_state(node.word, node.closes),
                                self.used + (1 if self.words else 0) + node.width)
        return out

    def _finish_word(self) -> None:
        assert self.node is not None and self.node.word is not None
        self.positions, self.jump, self.n_spans = self._next_state(self.node.word, self.node.closes)
        self.used += (1 if self.words else 0) + self.node.width
        self.words.append(self.node.word)

    def advance(self, token: int) -> None:
        if self.done:
            return
        if token in self.vocab.eos_ids:
            if self.node is not None and self.node.word_end:
                self._finish_word()
            self.done = True
            return
        if self.node is not None and token in self.node.children:
            self.node = self.node.children[token]
        else:  # a new word starts (the previous one, if any, was complete)
            if self.node is not None and self.node.word_end:
                self._finish_word()
            root = self.vocab.spaced if self.words else self.vocab.first
            self.banned, self.eligible = self._rules(self.words, (self.positions, self.jump, self.n_spans))
            self.room = self._room(self.words, self.used)
            self.node = root.children.get(token)
            if self.node is None:  # outside the vocabulary: the caller did not mask; stop constraining
                self.done = True
                return
        if not self.node.children:  # the word cannot go on: back to a boundary
            self._finish_word()
            self.node = None


def _any_word(node: _Node, banned: set[str], eligible: set[str] | None = None, room: int | None = None) -> bool:
    """Whether some word in the subtree of ``node`` (itself included) is eligible, not banned, and at most
    ``room`` characters wide (None: any width)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if (n.word is not None and n.word not in banned and (eligible is None or n.word in eligible)
                and (room is None or n.width <= room)):
            return True
        stack.extend(n.children.values())
    return False
