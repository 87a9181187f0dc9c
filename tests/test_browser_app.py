"""The served dashboard in headless Chromium, with every non-loopback request refused.

A store is seeded by a real optimization on the simulator (another process), then
``python -m dspex_lab.app._cli serve`` serves it on a free loopback port and
Chromium (the system one, through Python Playwright) uses it as a person would:
the runs list shows the run; clicking it opens the run page, whose Pareto chart
holds exactly the run's front (read from the chart's own Vega data, not from
pixels); clicking a front point shows that trial's configuration and sample
outputs; a SQL query typed into the console returns its rows, and one that
changes data is refused with the store's message. Then a second process starts
recording another run into the same file and the open page shows it without a
reload. Screenshots go to ``test-artifacts/browser/app-*.png`` (gitignored).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium
from test_app_dashboard import finish, seed_store, start_recording
from test_app_serve import ServerProcess, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ARTIFACTS / "browser"
_LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")

# The Bokeh view of the model carrying a CSS class (Panel renders into shadow roots).
_FIND = """(cls) => {
  let found = null;
  const walk = (v) => {
    if (found) return;
    if ((v.model.css_classes || []).includes(cls)) { found = v; return; }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const r of Bokeh.index.roots) walk(r);
  return found;
}"""
# The Pareto chart's rows as Vega holds them, with each point's position on the page.
_POINTS = f"""() => {{
  const view = ({_FIND})('dx-pareto');
  if (!view || !view.vega_view) return null;
  const vv = view.vega_view;
  const el = vv.container().querySelector('canvas, svg');
  if (!el) return null;
  const box = el.getBoundingClientRect();
  const [ox, oy] = vv.origin(); const pad = vv.padding();
  const x = vv.scale('x'), y = vv.scale('y');
  return vv.data('trials').map(d => ({{
    number: d.number, front: !!d.front,
    x: box.left + (pad.left || 0) + ox + x(d.cost),
    y: box.top + (pad.top || 0) + oy + y(d.accuracy)}}));
}}"""


@pytest.fixture()
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A Chromium page that refuses every request not to loopback; also the refused URLs
    and the page's errors."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    refused: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1200})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(90_000)

            def route(r: Any) -> None:
                if r.request.url.startswith(_LOCAL):
                    r.continue_()
                else:
                    refused.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, refused, errors
        finally:
            context.close()


def _tab(page: Any, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()


def _sql(page: Any, query: str) -> None:
    editor = page.locator(".dx-sql-editor textarea").first
    editor.fill(query)
    page.locator(".dx-sql-run button").first.click()


@pytest.mark.timeout(600)
def test_dashboard_in_chromium(tmp_path: Path,
                               browser_page: tuple[Any, list[str], list[str]]) -> None:
    page, refused, errors = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("app-*.png"):
        old.unlink()
    store = tmp_path / "store.duckdb"
    seed = seed_store(store, trials=10)
    run_id, front = seed["run_id"], seed["front"]
    server = start_server(store, tmp_path, "--refresh", "1")
    recorder = None
    try:
        _drive(page, server, run_id, front)
        # live: another process records a second run into the file the page is showing
        _tab(page, "Runs")
        recorder = start_recording(store, trials=4, name="live-run", speed=0.5)
        rows = page.locator(".dx-runs .tabulator-row")
        deadline = time.monotonic() + 150
        while rows.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rows.count() == 2, "the second run never appeared on the open page"
        finish(recorder)
        recorder = None
        page.wait_for_selector(".dx-runs .tabulator-row:has-text('live-run')", timeout=60_000)
        page.screenshot(path=str(SHOTS / "app-live.png"))
        assert page.locator(".dx-runs .tabulator-row").count() == 2
        assert refused == [], f"the page asked for something beyond loopback: {refused}"
        assert errors == [], errors
        log = server.output()
        assert "Traceback" not in log and "was not imported" not in log, log[-3000:]
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(SHOTS / "app-failure.png"), full_page=True)
        print("--- server output ---\n" + server.output()[-4000:])
        raise
    finally:
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
        server.stop()
    assert (SHOTS / "app-run.png").stat().st_size > 20_000


def _drive(page: Any, server: ServerProcess, run_id: str, front: list[int]) -> None:
    page.goto(server.url)
    # the runs list shows the seeded run
    page.wait_for_selector(".dx-runs .tabulator-row", timeout=120_000)
    rows = page.locator(".dx-runs .tabulator-row")
    assert rows.count() == 1
    assert run_id in rows.first.inner_text() and "seeded" in rows.first.inner_text()
    assert page.locator(".dx-header .dx-badge").first.inner_text() == "viewer · read-only"
    assert "live, every 1 s" in page.locator(".dx-header .dx-status").first.inner_text()
    page.screenshot(path=str(SHOTS / "app-runs.png"))

    # clicking it opens its page: the summary and the chart hold the run's front
    rows.first.click()
    summary = page.locator(f".dx-run-summary[data-run='{run_id}']").first
    summary.wait_for(timeout=60_000)
    assert summary.get_attribute("data-front") == str(len(front))
    assert summary.get_attribute("data-completed") == "10"
    page.wait_for_function(f"() => {{ const p = ({_POINTS})(); return p && p.length > 0; }}",
                           timeout=60_000)
    points = page.evaluate(_POINTS)
    assert len(points) == 10
    assert sorted(p["number"] for p in points if p["front"]) == front
    page.locator(".dx-trials").first.scroll_into_view_if_needed()
    page.locator(".dx-trials .tabulator-row").nth(9).wait_for(timeout=60_000)
    assert page.locator(".dx-trials .tabulator-row").count() == 10
    page.locator(".dx-pareto").first.scroll_into_view_if_needed()
    points = page.evaluate(_POINTS)  # where the points are now

    # clicking a point of the front shows that trial: its configuration and sample calls
    target = next(p for p in points if p["front"])
    page.mouse.click(target["x"], target["y"])
    trial = page.locator(f".dx-trial[data-trial='{target['number']}']").first
    trial.wait_for(timeout=60_000)
    assert trial.get_attribute("data-front") == "1"
    text = trial.inner_text()
    assert "Configuration" in text and "model" in text and "temperature" in text
    assert page.locator(".dx-trial .dx-sample").count() == 3
    page.screenshot(path=str(SHOTS / "app-run.png"), full_page=True)

    # the SQL console: rows come back; a statement that changes data is refused
    _tab(page, "SQL")
    _sql(page, f"select number, accuracy, cost from trials where run_id = '{run_id}' "
               f"order by number")
    page.wait_for_selector(".dx-sql-rows[data-rows='10']", timeout=60_000)
    result = page.locator(".dx-sql-result .tabulator-row")
    result.nth(9).wait_for(timeout=60_000)  # the table renders after the status line
    assert result.count() == 10
    assert result.first.inner_text().split()[0] == "0"
    page.screenshot(path=str(SHOTS / "app-sql.png"))
    _sql(page, "delete from runs")
    message = page.locator(".dx-sql-status .dx-error").first
    message.wait_for(timeout=60_000)
    assert "read-only" in message.inner_text() and "Traceback" not in message.inner_text()
    _sql(page, "select count(*) as n from runs")
    page.wait_for_selector(".dx-sql-rows[data-rows='1']", timeout=60_000)
    count = page.locator(".dx-sql-result .tabulator-row").first
    count.wait_for(timeout=60_000)
    assert count.inner_text().strip() == "1"
