"""Throughput of the CoT pipeline against a local OpenAI-compatible server with a set latency.

    python benchmarks/cot_throughput.py --latency 0.2 --slots 32 --concurrency 1 8 32 64
    python benchmarks/cot_throughput.py --data ../shared/data/amazon_office_products --format amazon2018

The server (``data_pipelines.teachers.local_server``) runs in its own process and serves at most
``--slots`` requests at once, each taking ``--latency`` seconds, so it can serve ``slots / latency``
requests per second. For each client concurrency the script measures, side by side in one run:

* ``client``: the bare ``OpenAITeacher`` sending profile prompts (no pipeline work);
* ``pipeline``: ``CoTBuilder`` end to end (profile -> candidates -> guard -> scoring -> pairs),
  counted in teacher requests per second;

and prints both against what the server can serve (``min(concurrency, slots) / latency``). The
pipeline should reach >= 0.9x of that once concurrency >= slots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creator.io import load_catalog  # noqa: E402
from creator.io.catalog import Catalog  # noqa: E402
from creator.records.types import Ad, HistoryItem, User  # noqa: E402
from data_pipelines.cot_builder import CoTBuilder  # noqa: E402
from data_pipelines.cot_config import CoTConfig  # noqa: E402
from data_pipelines.teachers.base import TeacherRequest  # noqa: E402
from data_pipelines.teachers.openai_http import OpenAIConfig, OpenAITeacher  # noqa: E402


def _serve(conn, latency: float, slots: int) -> None:
    from data_pipelines.teachers.local_server import LocalChatServer

    server = LocalChatServer(latency_s=latency, slots=slots).start()
    conn.send(server.base_url)
    conn.recv()  # wait for "stop"
    conn.send(server.stats)
    server.stop()


def synthetic_catalog(n_users: int, history: int = 5) -> Catalog:
    """Users with distinct items (so no prompt repeats and the cache never answers)."""
    cat = Catalog()
    for u in range(n_users):
        items = []
        for j in range(history + 1):
            ad_id = f"a{u}_{j}"
            cat.ads[ad_id] = Ad(
                ad_id=ad_id,
                title=f"Trailhead Lantern No{u * 10 + j}, {j + 2}-Pack",
                brand="Trailhead",
                selling_points=["Bright and sturdy for camping trips", "Folds flat for storage"],
            )
            items.append(HistoryItem(ad_id, cat.ads[ad_id].title, float(j)))
        cat.users[f"u{u}"] = User(f"u{u}", items)
    return cat


async def bare_client(base_url: str, concurrency: int, n: int) -> float:
    teacher = OpenAITeacher(
        OpenAIConfig(model="bench", base_url=base_url, api_key="x", concurrency=concurrency)
    )
    reqs = [
        TeacherRequest(
            key=str(i),
            task="profile",
            messages=[
                {"role": "system", "content": "describe what they care about"},
                {"role": "user", "content": f"User history (oldest to newest):\n1. item {i}"},
            ],
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    results = await teacher.generate(reqs)
    dt = time.perf_counter() - t0
    await teacher.aclose()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return n / dt


def pipeline(
    base_url: str, concurrency: int, catalog: Catalog, rows: int, tmp: Path, chunk_rows: int
) -> tuple[float, int]:
    cfg = CoTConfig(
        data="-",
        out=str(tmp),
        teacher="openai",
        teacher_model="bench",
        base_url=base_url,
        api_key="x",
        concurrency=concurrency,
        candidates=2,
        limit=rows,
        cache=str(tmp / "cache.sqlite"),
        chunk_rows=chunk_rows,
    )
    builder = CoTBuilder(
        cfg,
        catalog,
        OpenAITeacher(OpenAIConfig(model="bench", base_url=base_url, api_key="x", concurrency=concurrency)),
    )
    t0 = time.perf_counter()
    summary = asyncio.run(builder.run())
    dt = time.perf_counter() - t0
    sent = summary["sent_to_teacher"]
    assert summary["requests_failed_after_retries"] == 0
    return sent / dt, summary["built"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/cot_throughput.py --latency 0.2 --slots 32",
    )
    p.add_argument("--latency", type=float, default=0.2, help="seconds per request on the server")
    p.add_argument("--slots", type=int, default=32, help="requests the server serves at once")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--seconds", type=float, default=8.0, help="target duration of each measurement")
    p.add_argument("--data", help="a catalog to take users and ads from (default: synthetic users)")
    p.add_argument("--format", default="auto")
    p.add_argument("--chunk-rows", type=int, default=64, help="pipeline chunk size (build-cot default: 256)")
    p.add_argument("--json", help="also write the table as JSON here")
    args = p.parse_args(argv)

    parent, child = mp.Pipe()
    server = mp.Process(target=_serve, args=(child, args.latency, args.slots), daemon=True)
    server.start()
    base_url = parent.recv()
    catalog = load_catalog(args.data, args.format) if args.data else synthetic_catalog(2000)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    print(
        f"server: latency {args.latency * 1000:.0f} ms, {args.slots} slots -> capacity "
        f"{args.slots / args.latency:.0f} req/s\n"
    )
    header = (
        f"{'concurrency':>11} {'can serve':>10} {'client':>9} {'pipeline':>9} {'pipe/serve':>10} {'rows':>6}"
    )
    print(header + "\n" + "-" * len(header))
    table = []
    for c in args.concurrency:
        can = min(c, args.slots) / args.latency
        n = max(20, int(can * args.seconds))
        client = asyncio.run(bare_client(base_url, c, n))
        with tempfile.TemporaryDirectory() as tmp:
            rows = max(10, n // 3)  # 3 requests per row (profile + 2 candidates)
            piped, built = pipeline(base_url, c, catalog, rows, Path(tmp), args.chunk_rows)
        table.append(
            {
                "concurrency": c,
                "can_serve": can,
                "client": client,
                "pipeline": piped,
                "ratio": piped / can,
                "rows": built,
            }
        )
        print(f"{c:>11} {can:>10.1f} {client:>9.1f} {piped:>9.1f} {piped / can:>10.2f} {built:>6}")
    parent.send("stop")
    stats = parent.recv()
    server.join(5)
    print(f"\nserver saw {stats['completions']} completions, at most {stats['max_in_flight']} at once")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
