"""Upload file for Google Ads Editor: responsive search ads, one row per ad group (segment) and ad.

Columns, as Google Ads Editor's CSV import names them for a responsive search ad:

* ``Campaign``: the campaign name (``campaign``, default ``hllm-creator``);
* ``Ad group``: the audience segment, ``segment <id>`` (one ad group per segment, so each segment's
  audience can be targeted with its own titles);
* ``Ad type``: ``Responsive search ad``;
* ``Headline 1`` .. ``Headline 15`` (at most 30 characters each) and ``Description 1`` .. ``Description 4``
  (at most 90), filled by ``creator.channels.rsa_assets.rsa_assets``: the segment's served title and the other
  candidates of that (segment, ad) that passed the guard, the ad's own compliant title (original or
  shortened), other short forms of the ad's words; descriptions from the ad's selling points cut at a phrase
  boundary. Every one passes the guard of its field (``google-rsa-headline`` / ``google-rsa-description``);
* ``Final URL``, ``Path 1``, ``Path 2``: ``final_url`` with ``{ad_id}`` filled in (empty without it).

Google Ads asks for at least 3 headlines and 2 descriptions per responsive search ad. A row that cannot
reach them from grounded material is still written, and listed: ``GoogleAdsExport.incomplete`` and a
logged warning (the caller prints the count). A pair with no compliant text at all (withheld, nothing
passes either guard) has no row and is listed too.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from creator.channels.presets import get_channel
from creator.channels.rsa_assets import MAX_DESCRIPTIONS, MAX_HEADLINES, rsa_assets
from creator.records.errors import DataError
from creator.records.types import Ad, Creative

__all__ = ["GOOGLE_ADS_COLUMNS", "GoogleAdsExport", "rsa_guards", "write_google_ads_csv"]

logger = logging.getLogger(__name__)

GOOGLE_ADS_COLUMNS = (["Campaign", "Ad group", "Ad type"] + [f"Headline {i}" for i in range(1, MAX_HEADLINES + 1)]
                      + [f"Description {i}" for i in range(1, MAX_DESCRIPTIONS + 1)]
                      + ["Final URL", "Path 1", "Path 2"])


@dataclass
class GoogleAdsExport:
    """What ``write_google_ads_csv`` wrote: ``incomplete`` lists (ad group, ad id, headlines, descriptions)
    of each row below 3 headlines or 2 descriptions (0 and 0: no row was written)."""

    path: Path
    rows: int = 0
    incomplete: list[tuple[str, str, int, int]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"google_ads_rows": self.rows, "google_ads_incomplete": len(self.incomplete)}


def rsa_guards(guard: object) -> tuple[object, object]:
    """(headline guard, description guard) sharing ``guard``'s banned words, fact checker and other settings;
    the one of ``guard``'s own channel is ``guard`` itself (its ``max_chars`` may be tighter than the preset)."""
    from creator.guard.check import Guard

    own = guard.config.channel  # type: ignore[attr-defined]
    out = []
    for name in ("google-rsa-headline", "google-rsa-description"):
        if name == own:
            out.append(guard)
            continue
        cfg = replace(guard.config, channel=name, max_chars=get_channel(name).max_chars)  # type: ignore[attr-defined]
        out.append(Guard(cfg, fact_checker=guard.fact_checker))  # type: ignore[attr-defined]
    return out[0], out[1]


def write_google_ads_csv(creatives: Iterable[Creative], path: str | Path, *, channel: str, ads: Mapping[str, Ad],
                         guard: object, alternates: Mapping[tuple[int, str], list[str]] | None = None,
                         campaign: str = "hllm-creator", final_url: str = "") -> GoogleAdsExport:
    """Write ``creatives`` (one per segment and ad) as a Google Ads Editor CSV. ``ads``: ad_id -> Ad;
    ``guard``: the run's guard (``creator.guard.check.Guard`` for ``channel``); ``alternates``: (segment, ad_id) ->
    the other candidates that passed it (``CatalogResult.alternates``)."""
    ch = get_channel(channel)
    if ch.export is None:
        raise DataError("this channel has no Google Ads upload file", field="channel",
                        expected="google-rsa-headline or google-rsa-description", got=repr(ch.name),
                        fix="generate with --channel google-rsa-headline (or -description) to export google-ads")
    headline_guard, description_guard = rsa_guards(guard)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    result, total = GoogleAdsExport(out), 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=GOOGLE_ADS_COLUMNS)
        writer.writeheader()
        for c in creatives:
            group, total = f"segment {c.segment_id}", total + 1
            served = [] if c.source == "withheld" or not c.title else [c.title]
            served += (alternates or {}).get((c.segment_id, c.ad_id), [])  # type: ignore[arg-type]
            assets = rsa_assets(ads[c.ad_id], served, headline_guard, description_guard, served_as=ch.export)
            if not assets.complete:
                result.incomplete.append((group, c.ad_id, len(assets.headlines), len(assets.descriptions)))
            if not assets.headlines and not assets.descriptions:
                continue
            row = {col: "" for col in GOOGLE_ADS_COLUMNS}
            row |= {"Campaign": campaign, "Ad group": group, "Ad type": "Responsive search ad",
                    "Final URL": final_url.replace("{ad_id}", c.ad_id) if final_url else ""}
            row |= {f"Headline {i}": t for i, t in enumerate(assets.headlines, start=1)}
            row |= {f"Description {i}": t for i, t in enumerate(assets.descriptions, start=1)}
            writer.writerow(row)
            result.rows += 1
    if result.incomplete:
        shown = "; ".join(f"{g} ad {a}: {h} headlines, {d} descriptions" for g, a, h, d in result.incomplete[:5])
        more = f" (and {len(result.incomplete) - 5} more)" if len(result.incomplete) > 5 else ""
        logger.warning("google_ads.csv: %d of %d ad groups have fewer than 3 headlines or 2 descriptions that "
                       "pass the guard; Google Ads will not post them until you add some in Editor: %s%s",
                       len(result.incomplete), total, shown, more)
    return result
