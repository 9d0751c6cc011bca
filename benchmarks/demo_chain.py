"""The README's demo chain (``hllm-creator quickstart --no-serve``) timed from an empty folder, stage by stage.

    python -m benchmarks.demo_chain --out runs/bench_demo_chain --threads 1
    python -m benchmarks.demo_chain --out runs/bench_demo_chain --data examples/office_products_sample

Runs the whole chain in this process (load -> train the five tiny models -> generate -> report), then
prints one row per stage (each training verb on its own row): wall seconds, share of the total and CPU
seconds of this process, with the machine, the torch threads and the load average (sampled every 5 s
during the run) noted. On a shared machine the CPU seconds of this one-thread run are close to what the
wall time would be on an idle one. The goal is
<= 600 s on 2 CPU cores. The chain's own settings are the shipped ones (training/configs/*_tiny.yaml and
``app.demo_artifacts.STAGES``); ``--train-args`` passes extra flags to a stage as quickstart does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path

BUDGET_S = 600.0


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every ``every`` seconds until stopped."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self._stop_event = every, [os.getloadavg()[0]], threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def stage_rows(summary: dict) -> list[tuple[str, float, float]]:
    """(stage, wall seconds, CPU seconds): the quickstart stages, training split into its five verbs."""
    rows: list[tuple[str, float, float]] = []
    for name, sec in summary["seconds"].items():
        cpu = summary["cpu_seconds"][name]
        if name.startswith("train"):
            wall_t, cpu_t = summary["train_seconds"], summary["train_cpu_seconds"]
            rows += [(f"train: {s}", wall_t[s], cpu_t[s]) for s in summary["trained"]]
            rows.append(("train: bookkeeping", sec - sum(wall_t[s] for s in summary["trained"]),
                         cpu - sum(cpu_t[s] for s in summary["trained"])))
        else:
            rows.append((name, sec, cpu))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench_demo_chain", help="an empty (or new) folder")
    p.add_argument("--data", help="catalog (default: the bundled sample)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the shared-box setting)")
    p.add_argument("--train-args", action="append", default=[], metavar="STAGE=FLAGS")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; the benchmark times the chain from nothing: pass a new --out")
    import torch

    torch.set_num_threads(args.threads)
    from app.quickstart import QuickstartConfig
    from app.quickstart import run as quickstart

    config = QuickstartConfig(out=str(out), no_serve=True, train_args=list(args.train_args),
                              **({"data": args.data} if args.data else {}))
    sampler = LoadSampler()
    sampler.start()
    t0 = time.perf_counter()
    code = quickstart(config)
    wall = time.perf_counter() - t0
    sampler.stop()
    if code != 0:
        print(f"quickstart returned {code}")
        return code
    summary = json.loads((out / "summary.json").read_text())
    rows = stage_rows(summary)
    loads = sampler.samples
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus visible, torch threads "
          f"{args.threads}; load average during the run: mean {sum(loads) / len(loads):.1f}, max {max(loads):.1f}")
    print(f"catalog: {summary['catalog']['ads']} ads, {summary['catalog']['users']} users ({args.data or 'sample'})")
    cpu_total = sum(c for _, _, c in rows)
    print("\n| stage | wall s | share | CPU s |\n|---|---:|---:|---:|")
    for name, sec, cpu in rows:
        print(f"| {name} | {sec:.1f} | {100 * sec / wall:.1f}% | {cpu:.1f} |")
    print(f"| **total** | **{wall:.1f}** | 100% | {cpu_total:.1f} |")
    print(f"\nbudget {BUDGET_S:.0f} s: {'met' if wall <= BUDGET_S else 'MISSED'} ({wall / 60:.1f} min wall; "
          f"{cpu_total / 60:.1f} min of CPU, about the wall time on an idle machine)")
    g = summary["generate"]
    print(f"generate: {g['segments']} segments, {g['pairs_generated']} pairs generated, {g['personalized']} "
          f"personalized, {g['fallbacks']} fallbacks; stages {g['seconds']}")
    (out / "bench_demo_chain.json").write_text(json.dumps(
        {"wall_s": wall, "rows": rows, "load": loads, "threads": args.threads, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
