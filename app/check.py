"""``hllm-creator check``: judge your own titles against a channel with the serving guard.

    hllm-creator check --channel google-rsa-headline --ads examples/office_products_sample \\
        --titles my_titles.csv --out runs/check
    hllm-creator check --config app/configs/check.yaml --titles my_titles.csv

``--titles`` is JSONL, CSV or Parquet with the columns ``ad_id,title``; ``--ads`` the catalog the ids refer
to (its texts ground the facts). One verdict per row is printed (rule, span, reason) with a summary per
rule; ``DIR/verdicts.jsonl`` holds one row per title with its ``passed`` flag and failures. The exit status
is 1 when any title fails, 0 when all pass, 2 on bad input. The guard is the one ``generate --channel``
serves with (``GuardConfig.for_channel`` and the catalog's brands), so what passes here is what serving
would serve.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creator.config import run_verb
from creator.records.errors import DataError, Problems

EXAMPLE = """example:
  hllm-creator check --channel google-rsa-headline --ads examples/office_products_sample \\
      --titles my_titles.csv --out runs/check
  hllm-creator check --config app/configs/check.yaml --titles my_titles.csv
"""


@dataclass
class CheckConfig:
    """``hllm-creator check``: the titles to judge, the catalog they belong to and the channel."""

    channel: str = field(metadata={"help": "google-rsa-headline, google-rsa-description, meta-headline, "
                                           "merchant-title or generic"})
    ads: str = field(metadata={"help": "the catalog with the ads the titles are for (folder or file)"})
    titles: str = field(metadata={"help": "JSONL, CSV or Parquet with the columns ad_id,title"})
    out: str = field(metadata={"help": "folder for verdicts.jsonl and summary.json"})
    format: str = field(default="auto", metadata={
        "help": "format of --ads: auto, amazon2018, mind, hllm, jsonl, csv or parquet"})
    quiet: bool = field(default=False, metadata={"help": "print only failing rows and the summary"})


def parse_config(argv: Sequence[str] | None = None) -> CheckConfig:
    """``CheckConfig`` from defaults, then ``--config YAML``, then the flags in ``argv``."""
    from creator.config import parse

    (cfg,) = parse([CheckConfig], argv, description=__doc__.split("\n")[0], epilog=EXAMPLE)
    return cfg


def read_titles(path: str) -> list[tuple[int, str, str]]:
    """(line, ad_id, title) per row; a missing column or an empty id is a one-line DataError."""
    from creator.io.records import iter_rows

    if not Path(path).is_file():
        raise DataError("titles file not found", file=path, expected="a JSONL, CSV or Parquet file",
                        got="nothing there", fix="pass --titles PATH")
    rows = []
    for line, row in iter_rows(path, Problems("fail"), required=("ad_id", "title")):
        missing = [c for c in ("ad_id", "title") if c not in row or row[c] is None]
        if missing:
            raise DataError("row lacks a required column", file=path, line=line, field=", ".join(missing),
                            expected="the columns ad_id and title", got=f"columns {sorted(row)[:8]}",
                            fix="add ad_id and title to every row")
        rows.append((line, str(row["ad_id"]).strip(), str(row["title"])))
    return rows


def check_titles(rows: list[tuple[int, str, str]], ads: dict[str, Any], channel: str, titles_path: str
                 ) -> list[dict[str, Any]]:
    """One verdict row per title, judged by the serving guard of ``channel``."""
    from creator.guard.check import Guard, GuardConfig, known_brands_from_ads

    guard = Guard(GuardConfig.for_channel(channel), known_brands=known_brands_from_ads(ads.values()))
    out = []
    for line, ad_id, title in rows:
        if ad_id not in ads:
            raise DataError("unknown ad id", file=titles_path, line=line, field="ad_id",
                            expected="an ad_id of the --ads catalog", got=repr(ad_id),
                            fix="fix the id, or pass the catalog that holds this ad with --ads")
        verdict = guard.check(title, ads[ad_id], original_title=ads[ad_id].title)
        out.append({"line": line, "ad_id": ad_id, "title": title, "channel": guard.channel.name,
                    "chars": guard.channel.width(title.strip()), **verdict.to_dict()})
    return out


def run(cfg: CheckConfig) -> int:
    """Judge every title, write ``verdicts.jsonl`` and ``summary.json``, print them; 1 when any title fails."""
    from creator.channels.presets import get_channel
    from creator.io import load_catalog

    channel = get_channel(cfg.channel)  # an unknown channel fails before anything is read
    rows = read_titles(cfg.titles)
    ads = load_catalog(cfg.ads, cfg.format).ads
    verdicts = check_titles(rows, ads, channel.name, cfg.titles)
    summary = write_verdicts(Path(cfg.out), verdicts, channel)
    print_verdicts(verdicts, summary, quiet=cfg.quiet)
    print(f"wrote {Path(cfg.out) / 'verdicts.jsonl'}, {Path(cfg.out) / 'summary.json'}")
    return 1 if summary["failed"] else 0


def write_verdicts(out: Path, verdicts: list[dict[str, Any]], channel: Any) -> dict[str, Any]:
    """``verdicts.jsonl`` (one row per title) and ``summary.json`` (counts per rule) in ``out``; the summary."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "verdicts.jsonl").open("w", encoding="utf-8") as fh:
        for v in verdicts:
            fh.write(json.dumps(v, ensure_ascii=False) + "\n")
    by_rule = Counter(f["rule"] for v in verdicts for f in v["failures"])
    failed = sum(not v["passed"] for v in verdicts)
    summary = {"channel": channel.name, "max_chars": channel.max_chars, "titles": len(verdicts),
               "passed": len(verdicts) - failed, "failed": failed, "failures_by_rule": dict(by_rule.most_common())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def print_verdicts(verdicts: list[dict[str, Any]], summary: dict[str, Any], *, quiet: bool) -> None:
    for v in verdicts:
        if v["passed"] and not quiet:
            print(f"PASS  line {v['line']}  ad {v['ad_id']}  ({v['chars']} chars)  {v['title']}")
        for f in v["failures"]:
            print(f"FAIL  line {v['line']}  ad {v['ad_id']}  {f['rule']}  {f['span']!r}: {f['reason']}")
    print(f"\ncheck ({summary['channel']}, max {summary['max_chars']} characters): {summary['passed']} of "
          f"{summary['titles']} titles pass")
    for rule, n in summary["failures_by_rule"].items():
        print(f"  {rule:<28} {n}")


def main(argv: list[str] | None = None) -> int:
    return run_verb(parse_config, run, argv)


if __name__ == "__main__":
    sys.exit(main())
