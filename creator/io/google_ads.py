"""Upload file for Google Ads Editor: responsive search ads, one row per ad group (segment) and ad.

Columns, as Google Ads Editor's CSV import names them for a responsive search ad:

* ``Campaign``: the campaign name (``campaign``, default ``hllm-creator``);
* ``Ad group``: the audience segment, ``segment <id>`` (one ad group per segment, so each segment's
  audience can be targeted with its own titles);
* ``Ad type``: ``Responsive search ad``;
* ``Headline 1`` .. ``Headline 15`` (at most 30 characters each) and ``Description 1`` .. ``Description 4``
  (at most 90): for ``google-rsa-headline`` the served title goes into the headlines, for
  ``google-rsa-description`` into the descriptions; the ad's own compliant title (original or shortened),
  when it differs, fills the next slot; the rest stay empty;
* ``Final URL``, ``Path 1``, ``Path 2``: ``final_url`` with ``{ad_id}`` filled in (empty without it).

Google Ads Editor imports such rows; before it posts them it asks for at least 3 headlines, 2
descriptions and a final URL, which the marketer adds in Editor (the file gives them one or two of
each). Withheld pairs (no compliant title) are left out.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from creator.channels import get_channel
from creator.errors import DataError
from creator.types import Creative

__all__ = ["GOOGLE_ADS_COLUMNS", "write_google_ads_csv"]

HEADLINES, DESCRIPTIONS = 15, 4
GOOGLE_ADS_COLUMNS = (["Campaign", "Ad group", "Ad type"] + [f"Headline {i}" for i in range(1, HEADLINES + 1)]
                      + [f"Description {i}" for i in range(1, DESCRIPTIONS + 1)]
                      + ["Final URL", "Path 1", "Path 2"])


def write_google_ads_csv(creatives: Iterable[Creative], path: str | Path, *, channel: str,
                         campaign: str = "hllm-creator", final_url: str = "",
                         extra_titles: dict[str, str] | None = None) -> Path:
    """Write ``creatives`` (one per segment and ad) as a Google Ads Editor CSV; ``extra_titles``: ad_id -> the
    ad's own compliant title, added as a second headline/description where it differs."""
    ch = get_channel(channel)
    if ch.export is None:
        raise DataError("this channel has no Google Ads upload file", field="channel",
                        expected="google-rsa-headline or google-rsa-description", got=repr(ch.name),
                        fix="generate with --channel google-rsa-headline (or -description) to export google-ads")
    prefix, slots = ("Headline", HEADLINES) if ch.export == "headline" else ("Description", DESCRIPTIONS)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=GOOGLE_ADS_COLUMNS)
        writer.writeheader()
        for c in creatives:
            if c.source == "withheld" or not c.title:
                continue
            texts = list(dict.fromkeys(t for t in (c.title, (extra_titles or {}).get(c.ad_id, "")) if t))
            row = {col: "" for col in GOOGLE_ADS_COLUMNS}
            row |= {"Campaign": campaign, "Ad group": f"segment {c.segment_id}", "Ad type": "Responsive search ad",
                    "Final URL": final_url.replace("{ad_id}", c.ad_id) if final_url else ""}
            row |= {f"{prefix} {i}": t for i, t in enumerate(texts[:slots], start=1)}
            writer.writerow(row)
    return out
