"""The teacher interface: requests in, text replies (with a record of every failed attempt) out.

Every teacher — an OpenAI-compatible server, a local transformers model, the offline MiniLM
teacher — answers the same ``TeacherRequest`` with a ``TeacherResult`` whose ``text`` is a JSON
object (or ``None`` after the last failed attempt). Replies are cleaned the same way for all:
reasoning blocks (``<think>...</think>``) and code fences are stripped and slightly broken JSON is
repaired (trailing commas, single quotes, a reply cut off mid-object).

    >>> parse_json_reply('<think>hmm {"no": 1}</think> ```json\\n{"title": "Gel Pens",}\\n```')
    {'title': 'Gel Pens'}
    >>> parse_json_reply('{"title": "Gel Pens", "selling_points": ["smooth"')
    {'title': 'Gel Pens', 'selling_points': ['smooth']}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

TASKS = ("profile", "cot_title", "fact_check")


@dataclass(frozen=True)
class TeacherSampling:
    """Sampling settings sent with every request; part of the response-cache key."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}; use 0 for greedy")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}; 512 fits every teacher prompt")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TeacherRequest:
    """One call to a teacher.

    ``messages`` is the chat prompt (LLM teachers); ``payload`` the same inputs as data (the offline
    teacher reads it instead of the prose). ``key`` identifies the request within a run.
    """

    key: str
    task: str
    messages: list[dict[str, str]]
    payload: dict[str, Any] = field(default_factory=dict)
    sampling: TeacherSampling = field(default_factory=TeacherSampling)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown teacher task {self.task!r}; expected one of {TASKS}")

    def content_hash(self, *, use_payload: bool = False) -> str:
        """sha256 of what the teacher reads: the messages (or the payload for data-driven teachers)."""
        body = self.payload if use_payload else self.messages
        return hashlib.sha256(
            json.dumps([self.task, body], sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()


@dataclass
class TeacherResult:
    """The reply to one request: ``text`` (a JSON object as text) or ``None`` with ``error`` set.

    ``failures`` lists every failed attempt (``{"attempt", "kind", "detail", "elapsed_s"}``), also
    when a later attempt succeeded.
    """

    key: str
    text: str | None
    error: str | None = None
    attempts: int = 1
    failures: list[dict[str, Any]] = field(default_factory=list)
    cached: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.text is not None

    def data(self) -> dict[str, Any]:
        """The reply as a dict (already validated by the teacher)."""
        if self.text is None:
            raise ValueError(f"request {self.key} has no reply ({self.error})")
        return json.loads(self.text)


ResultCallback = Callable[[TeacherRequest, TeacherResult], None]


class Teacher(Protocol):
    """Anything that answers teacher requests. ``name`` (model id + version) goes into cache keys."""

    name: str
    uses_payload: bool  # True: replies depend on ``payload`` only (offline teacher); False: on ``messages``

    async def generate(
        self, requests: Sequence[TeacherRequest], *, on_result: ResultCallback | None = None
    ) -> list[TeacherResult]:
        """One result per request, in order. ``on_result`` is called as each one completes."""
        ...


class ReplyError(ValueError):
    """A reply that holds no usable JSON object, even after repair."""


_THINK_RE = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """Drop ``<think>...</think>`` blocks, and everything before a lone ``</think>`` (R1-style)."""
    text = _THINK_RE.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    return text.strip()


def _close(fragment: str) -> str:
    """Close the strings, arrays and objects left open by a reply cut off mid-way."""
    stack: list[str] = []
    in_str = escape = False
    for ch in fragment:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = fragment + ('"' if in_str else "")
    out = re.sub(r",\s*$", "", out.rstrip())
    out = re.sub(r'(?:,\s*)?"[^"]*"\s*:\s*$', "", out)  # a key with no value yet
    return out + "".join(reversed(stack))


def _candidates(text: str) -> list[str]:
    start = text.find("{")
    if start < 0:
        return []
    depth, in_str, escape = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            escape = (not escape) if ch == "\\" else False
            if ch == '"' and not escape:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return [text[start : i + 1]]
    return [_close(text[start:])]


def _loads_lenient(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", text)  # trailing commas
    fixed = re.sub(r"(?<=[{,\s])'([^'\n]*)'\s*:", r'"\1":', fixed)  # 'key':
    fixed = re.sub(r":\s*'([^'\n]*)'", r': "\1"', fixed)  # : 'value'
    fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", fixed))
    return json.loads(fixed)


def parse_json_reply(text: str) -> dict[str, Any]:
    """The JSON object in a model reply; raises ``ReplyError`` when there is none."""
    if not isinstance(text, str) or not text.strip():
        raise ReplyError("empty reply")
    body = strip_reasoning(text)
    fence = _FENCE_RE.search(body)
    if fence:
        body = fence.group(1)
    for cand in _candidates(body):
        try:
            value = _loads_lenient(cand)
        except json.JSONDecodeError as exc:
            raise ReplyError(f"invalid JSON after repair: {exc.msg} at {exc.pos}: {cand[:80]!r}") from None
        if isinstance(value, dict):
            return value
    raise ReplyError(f"no JSON object in reply: {body[:80]!r}")


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


_ALIASES = {
    "profile": {
        "long_term_interests": ("long-term interest", "long_term_interest", "long-term interests"),
        "short_term_interests": ("short-term interest", "short_term_interest", "short-term interests"),
        "preferences": ("preference",),
        "needs": ("user needs", "user_needs", "need"),
        "description": ("user profile description", "profile", "summary"),
    },
    "cot_title": {
        "suitable_user_info": ("suitable user info",),
        "selling_points": ("content users may be interested in", "selling points", "selling_points_used"),
        "title": ("personalized title", "personalized_title", "rewrite_title", "final title"),
    },
    "fact_check": {
        "supported": ("grounded", "consistent"),
        "unsupported_claims": ("claims", "unsupported"),
        "reason": ("explanation",),
    },
}


def normalise_reply(task: str, data: dict[str, Any]) -> dict[str, Any]:
    """Map a parsed reply onto the task's schema (paper key names accepted); ``ReplyError`` if unusable."""
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    out: dict[str, Any] = {}
    for key, aliases in _ALIASES[task].items():
        for name in (key, *aliases):
            if name in lowered:
                out[key] = lowered[name]
                break
    if task == "profile":
        for key in ("long_term_interests", "short_term_interests", "preferences", "needs"):
            out[key] = _str_list(out.get(key))
        out["description"] = str(out.get("description") or "").strip()
        if not (out["description"] or out["long_term_interests"] or out["short_term_interests"]):
            raise ReplyError("profile reply has no interests and no description")
    elif task == "cot_title":
        title = out.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ReplyError("cot_title reply has no 'title' string")
        out["title"] = " ".join(title.split()).strip("\"' ")
        out["suitable_user_info"] = str(out.get("suitable_user_info") or "").strip()
        out["selling_points"] = _str_list(out.get("selling_points"))
    else:
        supported = out.get("supported")
        if isinstance(supported, str):
            supported = supported.strip().lower() in ("true", "yes", "1")
        if not isinstance(supported, bool):
            raise ReplyError("fact_check reply has no boolean 'supported'")
        out["supported"] = supported
        out["unsupported_claims"] = _str_list(out.get("unsupported_claims"))
        out["reason"] = str(out.get("reason") or "")
    return out


def validate_reply(task: str, text: str) -> str:
    """The reply reduced to the task's JSON schema, as compact text; ``ReplyError`` when unusable."""
    return json.dumps(normalise_reply(task, parse_json_reply(text)), ensure_ascii=False)
