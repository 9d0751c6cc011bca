"""A response cache on disk so a killed run restarts where it stopped and never pays twice.

Keyed by (prompt hash, model, sampling params): the same prompt sent to the same model with the
same settings is answered from SQLite. Only successful replies are stored (a failure is retried on
the next run). Each reply is committed as it arrives (WAL journal), so a SIGKILL loses nothing
already answered.

    >>> cache = ResponseCache(":memory:")
    >>> cache.put("k", "m", '{"title": "x"}', task="cot_title")
    >>> cache.get("k")
    '{"title": "x"}'
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from data_pipelines.teachers.base import ResultCallback, Teacher, TeacherRequest, TeacherResult

logger = logging.getLogger(__name__)


class ResponseCache:
    """SQLite table ``responses(key, model, task, text, created)``; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "task TEXT, text TEXT NOT NULL, created REAL DEFAULT (julianday('now')))"
        )

    @staticmethod
    def key(request: TeacherRequest, model: str, *, use_payload: bool = False) -> str:
        sampling = json.dumps(request.sampling.to_dict(), sort_keys=True)
        raw = f"{request.content_hash(use_payload=use_payload)}\x00{model}\x00{sampling}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM responses WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, text: str, *, task: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, task, text) VALUES (?, ?, ?, ?)",
                (key, model, task, text),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedTeacher:
    """Wraps a teacher: answers from the cache where it can, sends only the misses, stores each success."""

    def __init__(self, teacher: Teacher, cache: ResponseCache) -> None:
        self.teacher = teacher
        self.cache = cache
        self.name = teacher.name
        self.uses_payload = teacher.uses_payload
        self.stats = {"hits": 0, "misses": 0, "stored": 0}

    async def generate(
        self, requests: Sequence[TeacherRequest], *, on_result: ResultCallback | None = None
    ) -> list[TeacherResult]:
        keys = [ResponseCache.key(r, self.name, use_payload=self.uses_payload) for r in requests]
        results: list[TeacherResult | None] = [None] * len(requests)
        todo: list[int] = []
        for i, (req, key) in enumerate(zip(requests, keys, strict=True)):
            text = self.cache.get(key)
            if text is None:
                todo.append(i)
                continue
            results[i] = TeacherResult(key=req.key, text=text, cached=True, attempts=0)
            self.stats["hits"] += 1
            if on_result:
                on_result(req, results[i])
        # identical prompts in one batch are sent once and the reply shared
        groups: dict[str, list[int]] = {}
        for i in todo:
            groups.setdefault(keys[i], []).append(i)
        self.stats["misses"] += len(groups)
        self.stats["hits"] += len(todo) - len(groups)
        sent = [idx[0] for idx in groups.values()]
        by_key = {requests[i].key: i for i in sent}

        def store(req: TeacherRequest, res: TeacherResult) -> None:
            i = by_key[req.key]
            if res.ok:
                self.cache.put(keys[i], self.name, res.text, task=req.task)
                self.stats["stored"] += 1
            if on_result:
                for j in groups[keys[i]]:
                    on_result(requests[j], res if j == i else replace(res, key=requests[j].key, cached=True))

        if sent:
            fresh = await self.teacher.generate([requests[i] for i in sent], on_result=store)
            for i, res in zip(sent, fresh, strict=True):
                for j in groups[keys[i]]:
                    results[j] = res if j == i else replace(res, key=requests[j].key, cached=True)
        return [r for r in results if r is not None]
