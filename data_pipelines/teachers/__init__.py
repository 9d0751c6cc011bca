"""Teacher backends for the CoT pipeline: OpenAI-compatible HTTP, local transformers, offline MiniLM.

All answer ``TeacherRequest`` lists through the ``Teacher`` protocol (``base.py``); wrap one in
``CachedTeacher`` (``cache.py``) to answer repeated prompts from disk.
"""

from data_pipelines.teachers.base import (
    ReplyError,
    Teacher,
    TeacherRequest,
    TeacherResult,
    TeacherSampling,
    parse_json_reply,
    strip_reasoning,
    validate_reply,
)
from data_pipelines.teachers.cache import CachedTeacher, ResponseCache

__all__ = [
    "CachedTeacher",
    "ReplyError",
    "ResponseCache",
    "Teacher",
    "TeacherRequest",
    "TeacherResult",
    "TeacherSampling",
    "parse_json_reply",
    "strip_reasoning",
    "validate_reply",
]
