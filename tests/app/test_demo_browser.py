"""The demo's main path in a real browser: Debian's Chromium driven by Playwright (no browser download).

load sample -> pick ad -> generate -> segments table visible -> export CSV downloaded. Screenshots go
to ``test-artifacts/`` (gitignored). Install the browser with ``scripts/install_browser.sh``.
The models are the test doubles of ``tests/demo_doubles.py`` behind the real pipeline and guard.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HLLM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
        "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/install_browser.sh (apt-get install chromium)",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("creator.pipeline.catalog", reason="the batch-generation pipeline is not on this branch yet")

from playwright.sync_api import expect  # noqa: E402

from tests.demo_doubles import launch_doubles_app  # noqa: E402


@pytest.fixture(scope="module")
def app_url():
    demo, url = launch_doubles_app()
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else
                                    shutil.which("chromium"), headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        yield context.new_page()
        context.close()
        browser.close()


def wait_status(page, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=text,
                           timeout=timeout)


def test_load_pick_generate_export(page, app_url, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(app_url)
    page.locator("#load-sample").click()
    wait_status(page, "Loaded")
    assert "300 ads, 1,000 users" in page.locator("#status").inner_text()

    page.locator("#ad-picker input").click()
    page.get_by_role("option", name=re.compile(r"\[1002\]$")).click()
    wait_status(page, "picked")
    assert "Selling points" in page.locator("#ad-card").inner_text()

    expect(page.locator("#channel")).to_be_visible()  # the channel picker, on generic by default
    expect(page.locator("#channel input")).to_have_value(re.compile(r"^generic"))
    page.locator("#generate").click()
    wait_status(page, "Generated for")
    assert "(generic, at most 120 characters)" in page.locator("#status").inner_text()
    table = page.locator("#segments")
    expect(table).to_be_visible()
    expect(table).to_contain_text("Belkin WaveRest Gel Mouse Pad")
    expect(table).to_contain_text("personalized")
    expect(table).to_contain_text("/120")  # each title's length against the channel's limit
    expect(page.locator("#export-google-ads")).to_be_hidden()  # the Google Ads file is for Google channels
    assert "Traceback" not in page.content()
    page.locator("#segment-map").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "demo_main.png"), full_page=True)

    with page.expect_download() as info:
        page.locator("#export").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert path.name == "creatives_ad1002.csv"
    assert len(rows) == 6 and {r["ad_id"] for r in rows} == {"1002"}  # default K = 6 segments
    assert sum(int(r["users"]) for r in rows) == 1000
    assert {r["channel"] for r in rows} == {"generic"} and all(r["chars"].endswith("/120") for r in rows)
    page.screenshot(path=str(ARTIFACTS / "demo_after_export.png"))


@pytest.fixture(scope="module")
def trained_app_url():
    """The app on the real trained artefacts (their user model and judge embed through the on-disk MiniLM
    cache). Train them once with ``hllm-creator quickstart --out DIR --no-serve`` (about 6 minutes on 2
    cores) and set ``HLLM_DEMO_ARTIFACTS=DIR/artifacts``."""
    import socket

    from app.demo import build_app
    from app.demo_artifacts import ArtifactParts, missing_stages

    root = os.environ.get("HLLM_DEMO_ARTIFACTS")
    if not root or missing_stages(root):
        pytest.skip("set HLLM_DEMO_ARTIFACTS to a folder trained by `hllm-creator quickstart` (DIR/artifacts) "
                    "to click through the demo on the real models")
    demo = build_app(ArtifactParts(root))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def click_and_read(page, button: str, expected: str) -> str:
    """Click, wait for the status to say ``expected`` or an error, and return the status."""
    page.locator(button).click()
    page.wait_for_function("e => new RegExp(e + '|went wrong|Cannot do').test("
                           "document.querySelector('#status').innerText)", arg=expected, timeout=180_000)
    return page.locator("#status").inner_text()


@pytest.mark.slow
def test_trained_models_generate_and_regenerate_ten_times_each(page, trained_app_url):
    page.goto(trained_app_url)
    page.locator("#load-sample").click()
    wait_status(page, "Loaded")
    page.locator("#ad-picker input").click()
    page.get_by_role("option", name=re.compile(r"\[1002\]$")).click()
    wait_status(page, "picked")
    for i in range(10):
        for button, expected in (("#generate", "Generated for"), ("#regenerate", "Regenerated segment \\d+\\."),
                                 ("#regenerate-all", "Regenerated segments")):
            text = click_and_read(page, button, expected)
            assert "went wrong" not in text and "Cannot do" not in text, (i, button, text)
    assert "Traceback" not in page.content()
