"""Rule-based title edits that add nothing: trim the original title, cut a hook from a selling point, join them.

The offline teacher composes its CoT titles with these, and ``pretrain-lm`` uses them to write the
copy-and-combine examples that teach the tiny base LM the generator's task before SFT. Every word of
the result comes from the title or the selling point given.

    >>> hook("This pen writes smoothly on any paper, even glossy", 40)
    'Pen writes smoothly on any paper'
    >>> fit_core("Pilot G2 Gel Pens, Fine Point, Black, 12 Count", 30)
    'Pilot G2 Gel Pens, Fine Point'
    >>> compose("Pilot G2 Gel Pens, Fine Point, Black", "Smooth writing for busy teachers", 70)
    'Pilot G2 Gel Pens, Fine Point - Smooth writing for busy teachers'
"""

from __future__ import annotations

import re

LEAD_DROP = {"this", "these", "the", "it", "our", "they", "each", "its"}
TRAIL_DROP = {"a", "an", "and", "or", "the", "of", "for", "to", "in", "on", "with", "by", "from", "at", "as", "that",
               "which", "while", "so", "your", "you", "is", "are", "be", "&"}


def word_list(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z'&+-]*|\d[\w./-]*", text)


def hook(point: str, max_len: int = 60) -> str:
    """A short, fluent fragment of a selling point: its first clause, or a cut at a phrase boundary."""
    clause = re.split(r"(?<=\w)[,;:.!?](?:\s|$)|\s[-\u2013\u2014]\s|\s\(", point.strip(), maxsplit=1)[0]
    words = clause.split()
    while words and words[0].lower() in LEAD_DROP:
        words.pop(0)
    text = " ".join(words)
    if len(text) > max_len:
        cut = text[: max_len + 1]
        # prefer ending before a connective ("... with", "... and"), else at a word boundary
        m = list(re.finditer(r"\s(?:with|and|for|that|which|to|so|while|in|on|from|by)\s", cut))
        cut = cut[: m[-1].start()] if m and m[-1].start() > max_len // 3 else cut.rsplit(" ", 1)[0]
        out = cut.split()
        while out and (out[-1].lower() in TRAIL_DROP or out[-1].count("(") != out[-1].count(")")):
            out.pop()
        text = " ".join(out)
    text = text.strip(" ,;:-")
    return text[:1].upper() + text[1:] if text else ""

def good_hook(hook: str, title: str) -> bool:
    """Reads like a benefit, not a spec line or a repeat of the title."""
    words = hook.split()
    if len(words) < 3 or ":" in hook:
        return False
    alpha = sum(1 for w in words if re.fullmatch(r"[A-Za-z][A-Za-z'-]*[,.]?", w))
    title_words = {w.lower() for w in word_list(title)}
    overlap = sum(1 for w in words if w.lower().strip(",.") in title_words) / len(words)
    return alpha / len(words) >= 0.7 and overlap < 0.7

def fit_core(title: str, budget: int) -> str:
    """The original title, shortened to ``budget`` characters by dropping its trailing segments."""
    if len(title) <= budget:
        return title
    cut = title
    while len(cut) > budget:
        m = list(re.finditer(r",\s|\s\(|\s[-\u2013\u2014|]\s", cut))
        if not m:
            break
        cut = cut[: m[-1].start()].rstrip(" ,(-")
    if len(cut) > budget:  # one long segment: cut at a word boundary
        cut = cut[:budget].rsplit(" ", 1)[0]
    while cut and (cut.count("(") != cut.count(")") or cut.split()[-1].lower() in TRAIL_DROP):
        cut = cut.rsplit(" ", 1)[0] if " " in cut else ""
    return cut.rstrip(" ,;:-(") or title[:budget].rsplit(" ", 1)[0]

def compose(title: str, lead: str, budget: int, *, hook_first: bool = False, joiner: str = " - ") -> str:
    """The title (trimmed to fit) joined with ``lead``: ``core - lead``, or ``lead: core`` with ``hook_first``."""
    if not lead:
        return fit_core(title, budget)
    lead = lead if len(lead) <= budget // 2 else hook(lead, budget // 2)
    core = fit_core(title, max(budget - len(lead) - len(joiner), 1))
    if hook_first:
        return f"{lead}: {core}" if core else lead
    return f"{core}{joiner}{lead}" if core else lead



def length_budget(title: str, max_chars: int = 120, max_added_chars: int | None = None) -> int:
    """Characters a rewrite of ``title`` may use: ``max_chars``, and at most ``max_added_chars`` over the title's
    own length when that is set.

        >>> length_budget("Gel Pens, 12-Pack", 120, 40), length_budget("Gel Pens", 120)
        (57, 120)
    """
    return max_chars if max_added_chars is None else min(max_chars, len(title) + int(max_added_chars))


def variants(title: str, hooks: list[str], *, max_chars: int = 120, max_added_chars: int = 40) -> list[str]:
    """The title trimmed to its length budget, then ``title - hook`` and ``hook: title`` for each hook, in order
    (duplicates kept). The budget is ``min(max_chars, len(title) + max_added_chars)``."""
    title = " ".join(title.split())
    budget = length_budget(title, max_chars, max_added_chars)
    out = [fit_core(title, budget)]
    for h in hooks:
        out += [compose(title, h, budget), compose(title, h, budget, hook_first=True)]
    return out
