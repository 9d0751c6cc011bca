"""Resumable, sharded output: each finished shard is a file renamed into place, then recorded in a manifest.

Layout of a run folder::

    run/manifest.json          fingerprint of the settings and inputs, sha256 + row count per finished shard
    run/plan.npz, plan.json    the frozen plan (segments, match scores, kept pairs): a rerun never re-clusters
    run/shards/shard-00007.jsonl

A crash (even SIGKILL) loses at most the shard in progress: a shard counts as finished only when its
file is in place *and* its hash is in the manifest, so a half-written file or a manifest that
missed the last rename both just mean "run that shard again". Reruns are only allowed with the same
fingerprint; anything else would silently mix two runs.

    >>> import tempfile
    >>> store = ShardStore(tempfile.mkdtemp(), fingerprint="abc")
    >>> store.is_done(0), store.write_shard(0, [{"x": 1}]), store.is_done(0), store.read_shard(0)
    (False, 1, True, [{'x': 1}])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creator.records.types import GuardVerdict

logger = logging.getLogger(__name__)


@dataclass
class ShardRow:
    """One kept (segment, ad) pair after generation: every candidate, its guard rules, the title served.

    ``source`` is ``personalized`` (a candidate passed) or ``fallback`` (none did: the ad's title, or the
    channel's fallback once assembled); ``verdict`` is the served candidate's (the first one's on a fallback).
    Written as one JSON line per row (``to_dict``) and read back by a resumed run (``from_dict``)."""

    segment_id: int
    ad_id: str
    title: str
    source: str
    judge: float | None
    candidates: list[str]
    failed_rules: list[list[str]]
    verdict: GuardVerdict | None

    def to_dict(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "ad_id": self.ad_id, "title": self.title, "source": self.source,
                "judge": self.judge, "candidates": list(self.candidates), "failed_rules": self.failed_rules,
                "verdict": self.verdict.to_dict() if self.verdict is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardRow:
        verdict = GuardVerdict.from_dict(d["verdict"]) if d["verdict"] else None
        return cls(segment_id=d["segment_id"], ad_id=d["ad_id"], title=d["title"], source=d["source"],
                   judge=d["judge"], candidates=d["candidates"], failed_rules=d["failed_rules"], verdict=verdict)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ShardStore:
    """Finished shards of one run, keyed by shard index, with a manifest guarding against mixed runs."""

    def __init__(self, root: str | Path, *, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.manifest_path = self.root / "manifest.json"
        self.manifest: dict[str, Any] = {"fingerprint": fingerprint, "shards": {}}
        if self.manifest_path.exists():
            found = json.loads(self.manifest_path.read_text())
            if found.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"{self.root} holds a run with other settings or inputs (fingerprint "
                    f"{found.get('fingerprint')!r}, this run {fingerprint!r}); resuming would mix two runs. "
                    "Fix: pass a new --out folder, or --overwrite to start this one afresh"
                )
            self.manifest = found
        else:
            atomic_write_bytes(self.manifest_path, self._manifest_bytes())

    def _manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest, indent=1, sort_keys=True).encode()

    def shard_path(self, index: int) -> Path:
        return self.root / "shards" / f"shard-{index:05d}.jsonl"

    def is_done(self, index: int) -> bool:
        entry = self.manifest["shards"].get(str(index))
        path = self.shard_path(index)
        if entry is None or not path.exists():
            return False
        return hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]

    def write_shard(self, index: int, rows: list[dict[str, Any]]) -> int:
        """Write a finished shard (file first, then manifest); returns the number of rows."""
        data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()
        atomic_write_bytes(self.shard_path(index), data)
        self.manifest["shards"][str(index)] = {"rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
        atomic_write_bytes(self.manifest_path, self._manifest_bytes())
        return len(rows)

    def read_shard(self, index: int) -> list[dict[str, Any]]:
        with open(self.shard_path(index), encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    # -- the frozen plan -------------------------------------------------------------------------
    def save_plan(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.root / "plan.npz", buf.getvalue())
        atomic_write_bytes(self.root / "plan.json", json.dumps(meta, ensure_ascii=False).encode())

    def load_plan(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        npz, meta = self.root / "plan.npz", self.root / "plan.json"
        if not (npz.exists() and meta.exists()):
            return None
        with np.load(npz) as data:
            arrays = {k: data[k] for k in data.files}
        logger.info("resuming %s: plan loaded, %d shard(s) already finished", self.root,
                    len(self.manifest["shards"]))
        return arrays, json.loads(meta.read_text())
