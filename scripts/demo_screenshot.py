"""Screenshot of the demo's main screen for the docs: the app on trained artefacts, driven by Chromium.

    python scripts/demo_screenshot.py --artifacts runs/demo/artifacts --ad 151 --candidates 8

Loads the bundled sample, picks ``--ad``, presses Generate and saves the page as a small PNG (scaled to
``--width`` pixels, 256-colour palette). Needs Debian's Chromium (``scripts/install_browser.sh``).
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
        "--disable-sync"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", default="runs/demo/artifacts", help="trained models (see docs/demo.md)")
    p.add_argument("--ad", default="1002", help="ad id to generate for")
    p.add_argument("--clusters", type=int, default=6)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--out", default="docs/demo_screenshot.png")
    p.add_argument("--width", type=int, default=1000, help="width of the saved PNG in pixels")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args(argv)

    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    from app.demo import build_app
    from app.demo_artifacts import ArtifactParts

    parts = ArtifactParts(args.artifacts)
    if not parts.ready():
        print(f"error: {args.artifacts} has no trained models; run `hllm-creator demo` once", file=sys.stderr)
        return 2
    demo = build_app(parts)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    raw = Path(args.out).with_suffix(".raw.png")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#load-sample").click()
            page.wait_for_function("document.querySelector('#status').innerText.includes('Loaded')")
            page.locator("#ad-picker input").click()
            page.get_by_role("option", name=re.compile(rf"\[{re.escape(args.ad)}\]$")).click()
            page.wait_for_function("document.querySelector('#status').innerText.includes('picked')")
            page.locator("#clusters input[type=number]").fill(str(args.clusters))
            page.locator("#candidates input[type=number]").fill(str(args.candidates))
            page.locator("#generate").click()
            page.wait_for_function("document.querySelector('#status').innerText.includes('Generated')",
                                   timeout=600_000)
            expect(page.locator("#segments")).to_be_visible()
            page.screenshot(path=str(raw), full_page=True)
            browser.close()
    finally:
        demo.close()
    img = Image.open(raw).convert("RGB")
    img = img.resize((args.width, round(img.height * args.width / img.width)), Image.LANCZOS)
    img.quantize(colors=256).save(args.out, optimize=True)
    raw.unlink()
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
