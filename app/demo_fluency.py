"""The demo's fluency gate: the guard rule ``disfluent`` (``creator.modeling.fluency``) calibrated on the loaded
catalog, so each row shows whether its title reads as text next to the fact check.

The reference LM is chosen as ``generate --fluency-gate`` chooses it (``auto``: the stock Gemma 3 270M when its
package is installed, else the catalog LM in ``ARTIFACTS/lm``), loaded once and shared by every tab. The
threshold is the ``percentile`` of the catalog's own titles' excess NLL (docs/fluency.md). Calibrating scores
those titles once per catalog (about 45 s for the 300 sample titles under Gemma on 2 cores); the threshold is
written to ``ARTIFACTS/fluency/`` under a key of the reference, percentile and titles, so a restart or a second
tab on the same catalog reads it back. Catalogs larger than ``MAX_CALIBRATION`` titles are calibrated on a
deterministic sample of that many.

    >>> calibration_titles(["b", " a ", "b", ""])
    ['a', 'b']
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_CALIBRATION = 500


def calibration_titles(titles: Sequence[str], limit: int = MAX_CALIBRATION) -> list[str]:
    """The distinct non-empty titles, sorted; above ``limit``, the ``limit`` with the smallest hash (a
    deterministic sample that does not depend on the catalog's order)."""
    distinct = sorted({t.strip() for t in titles if t and t.strip()})
    if len(distinct) <= limit:
        return distinct
    return sorted(sorted(distinct, key=lambda t: hashlib.sha256(t.encode()).hexdigest())[:limit])


class DemoFluency:
    """``gate(ads)``: a ``FluencyGate`` calibrated on these ads' titles (None when ``spec`` is off)."""

    def __init__(self, spec: str, *, catalog_lm: str | Path | None, cache_dir: str | Path,
                 percentile: float = 95.0) -> None:
        from creator.modeling.fluency import resolve_reference

        self.reference = resolve_reference(spec, catalog_lm=catalog_lm)  # a DataError now, not at first Generate
        self.cache_dir = Path(cache_dir)
        self.percentile = percentile
        self._scorer: Any = None
        self._gates: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.reference is not None

    def _key(self, titles: list[str]) -> str:
        h = hashlib.sha256(json.dumps([self.reference, self.percentile, titles]).encode()).hexdigest()
        return h[:16]

    def gate(self, ads: Sequence[Any]) -> Any:
        if not self.enabled or not ads:
            return None
        from creator.modeling.fluency import FluencyGate, FluencyScorer, calibrate, catalog_unigram

        titles = calibration_titles([a.title for a in ads])
        key = self._key(titles)
        with self._lock:  # Gradio's worker threads: one load and one calibration per catalog
            if key in self._gates:
                return self._gates[key]
            if self._scorer is None:
                self._scorer = FluencyScorer.from_pretrained(self.reference)
            unigram = catalog_unigram(self._scorer, ads)
            path = self.cache_dir / f"{key}.json"
            if path.exists():
                saved = json.loads(path.read_text())
                gate = FluencyGate(self._scorer, float(saved["threshold"]), saved["percentile"],
                                   int(saved["calibrated_on"]), unigram)
            else:
                logger.info("calibrating the fluency gate on %d catalog titles under %s (once per catalog)",
                            len(titles), self._scorer.name)
                gate = calibrate(self._scorer, titles, self.percentile, unigram=unigram)
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(gate.to_dict(), indent=1))
                tmp.replace(path)
            self._gates[key] = gate
            return gate
