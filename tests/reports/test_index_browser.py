"""results/index.html opened in a real browser (headless Chromium driven by Playwright)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from experiments.registry import SECTIONS, all_tasks
from utils.reports import write_index, write_summary
from utils.runner import Settings, run_tasks

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: install Chromium (apt-get install chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium); the page test needs a browser")
    return sync_api


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny run of two tasks on stand-in data, plus one failed task, then the page."""
    results = tmp_path_factory.mktemp("results")
    tasks = all_tasks()
    run_tasks([t for t in tasks if t.id in ("3.1", "4.3")], Settings(mode="tiny", results_dir=results, seed=0),
              tasks, sections=SECTIONS)
    failed = next(t for t in tasks if t.id == "3.2")
    folder = results / failed.dirname
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"task": "3.2", "status": "failed", "mode": "tiny", "seed": 0,
                                                      "error": "RuntimeError: <b>boom</b> & friends"}))
    write_summary(results, tasks)
    return results, write_index(results, tasks, SECTIONS)


def test_index_in_a_real_browser(finished_run):
    results, index = finished_run
    sync_api = _browser()
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(index.as_uri())
            page.wait_for_load_state("load")
            # thumbnails load lazily; make them load now, then wait until every one has finished
            page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30000)
            ids = page.eval_on_selector_all("section.task h3", "els => els.map(e => e.textContent.split(' ')[0])")
            assert ids == [t.id for t in all_tasks()], "every catalogue task has a row, in order"
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.alt, "
                                                      "e.complete && e.naturalWidth > 0])")
            assert images, "the finished tasks' figures are shown"
            for src, alt, loaded in images:
                assert loaded, f"{src} did not load"
                assert alt and "figure" in alt
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            for href in links:
                url = urlparse(href)
                if url.scheme == "file":
                    assert Path(unquote(url.path)).exists(), f"dead link {href}"
            banner = page.locator(".banner")
            assert banner.count() == 1 and "stand-in" in banner.inner_text().lower()
            failed = page.locator("#task-3\\.2")
            assert "RuntimeError: <b>boom</b> & friends" in failed.inner_text()   # shown as text, escaped
            assert failed.locator("b").count() == 0
            assert "not run" in page.locator("#task-1\\.1").inner_text()
            assert "test accuracy" in page.locator("#task-4\\.3").inner_text()
        finally:
            browser.close()
    assert not errors, errors


def test_summary_is_the_plain_twin(finished_run):
    results, _ = finished_run
    text = (results / "summary.md").read_text()
    assert "| target |" in text and "not applicable" in text       # 4.3's FULL target on a tiny run
    for t in all_tasks():
        assert f"| {t.title} |" in text or f"| {t.title.replace('|', chr(92) + '|')} |" in text
