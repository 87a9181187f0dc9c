"""The quickstart notebook in real JupyterLab, driven by headless Chromium.

JupyterLab starts on 127.0.0.1 (a free port, a token, its own config, data and runtime
directories, a temporary root holding a copy of ``notebooks/01-quickstart.ipynb``),
Chromium (the system one, through Python Playwright; never ``playwright install``)
opens the notebook and runs every cell from the Run menu, as a user would. The test
then checks that the run monitor's Pareto chart renders inside the widget output,
that its points grow while the run is live, that the run finishes, and that no cell
fails. A screenshot goes to ``test-artifacts/browser/`` (gitignored).

Skipped only when /usr/bin/chromium is missing outside CI; in CI it must run
(``scripts/install_browser.sh`` installs Chromium).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Lab,
    copy_notebook,
    require_chromium,
    start_lab,
    stop_lab,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "01-quickstart.ipynb"
SHOTS = ARTIFACTS / "browser"


@pytest.fixture()
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    copy_notebook(NOTEBOOK, root)
    lab = start_lab(tmp_path, root, monkeypatch)
    try:
        yield lab
    finally:
        stop_lab(lab)


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"  # a fresh, empty user data dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1300})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


# -- reading the page ------------------------------------------------------------------
_IN_WIDGET = ".jupyter-widgets .vega-embed"  # a chart inside a widget
_CHART = f".jp-OutputArea-output {_IN_WIDGET}"
# One look at the monitor: its Pareto chart (the first vega-embed of a widget output: a
# canvas, or an SVG whose point marks can be counted), a fingerprint of what the chart
# shows, the run's state from the monitor's header, and the trials counted by its
# progress label ("5 of 16 trials").
_SAMPLE_JS = """(selector) => {
  const chart = document.querySelector(selector);
  if (!chart) return null;
  const out = chart.closest('.jp-OutputArea-output');
  const text = out ? out.innerText : '';
  const canvas = chart.querySelector('canvas');
  const svg = chart.querySelector('svg');
  let image = '', width = 0, height = 0, marks = null;
  if (canvas) {
    image = canvas.toDataURL(); width = canvas.width; height = canvas.height;
  } else if (svg) {
    image = svg.outerHTML;
    const box = svg.getBoundingClientRect(); width = box.width; height = box.height;
    marks = svg.querySelectorAll('.mark-symbol path').length;
  }
  let hash = 0;
  for (let i = 0; i < image.length; i++) hash = (hash * 31 + image.charCodeAt(i)) | 0;
  const embeds = out ? out.querySelectorAll('.vega-embed') : [];
  const hv = embeds.length > 1 && embeds[1].querySelector('svg')
    ? embeds[1].querySelectorAll('.mark-symbol path, .mark-line path').length : null;
  const trials = text.match(/(\\d+) of (\\d+) trials/);
  const state = text.match(/strategy\\s+\\S+\\s+·\\s+(\\w+)/);
  return {kind: canvas ? 'canvas' : (svg ? 'svg' : 'none'), width, height, hash, marks,
          done: trials ? +trials[1] : null, total: trials ? +trials[2] : null,
          state: state ? state[1] : null, hv};
}"""
_ERRORS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
  .map(e => e.innerText).filter(t => /Traceback|Error/.test(t))"""


def _busy_cells(page: Any) -> int:
    return int(page.evaluate(
        """() => Array.from(document.querySelectorAll('.jp-InputArea-prompt'))
             .filter(p => p.innerText.includes('*')).length"""))


def _monitor(page: Any) -> Any:
    """The output holding the run monitor (the first chart's output), scrolled into view."""
    out = page.locator(".jp-OutputArea-output", has=page.locator(_IN_WIDGET)).first
    out.scroll_into_view_if_needed()
    return out


def _dismiss_news(page: Any) -> None:
    """JupyterLab asks once whether to fetch its news; answer no (keeps screenshots clean)."""
    button = page.locator(".Toastify").get_by_role("button", name="No", exact=True)
    if button.count():
        button.first.click()


def _run_all(page: Any) -> None:
    """Run > Run All Cells, from the menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


@pytest.mark.timeout(300)
def test_quickstart_runs_in_jupyterlab_with_a_live_pareto_chart(lab: Lab, page: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("quickstart*.png"):
        old.unlink()
    shot = SHOTS / "quickstart.png"
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        samples = _drive(lab, page)
        _check_samples(samples)
        assert not page.evaluate(_ERRORS_JS), page.evaluate(_ERRORS_JS)
    except BaseException:
        with contextlib.suppress(Exception):  # the page itself may be gone
            page.screenshot(path=str(SHOTS / "quickstart-failure.png"))
        print("--- browser console ---\n" + "\n".join(console[-80:]))
        print("--- jupyterlab log ---\n" + lab.log_tail(80))
        raise
    print("monitor over time (t, state, trials done, Pareto marks, hypervolume marks):",
          [(s["t"], s["state"], s["done"], s["marks"], s["hv"]) for s in samples])
    _monitor(page).screenshot(path=str(SHOTS / "quickstart-monitor-final.png"))
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def _drive(lab: Lab, page: Any) -> list[dict[str, Any]]:
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # the notebook's kernel (python3: this interpreter, see conftest_browser) is up
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))
             .some(e => /\\|\\s*Idle/.test(e.innerText))""", timeout=60_000)
    kernels = lab.api("/api/kernels")
    assert len(kernels) == 1 and kernels[0]["name"] == "python3", kernels
    _dismiss_news(page)

    _run_all(page)
    started = time.monotonic()
    page.wait_for_selector(_CHART, timeout=90_000)

    # watch the monitor until every cell has run
    samples: list[dict[str, Any]] = []
    live_shot = False
    while time.monotonic() - started < 150:
        sample = page.evaluate(_SAMPLE_JS, _CHART)
        if sample is not None:
            sample["t"] = round(time.monotonic() - started, 1)
            samples.append(sample)
            if not live_shot and sample["state"] == "running" and sample["done"]:
                _monitor(page).screenshot(path=str(SHOTS / "quickstart-monitor-live.png"))
                live_shot = True
        if _busy_cells(page) == 0 and sample is not None and sample["state"] != "running" \
                and samples[-min(len(samples), 6)]["state"] != "running":
            break  # finished, and seen so for a couple of seconds
        time.sleep(0.4)
    assert _busy_cells(page) == 0, f"cells still running after 150 s: {samples[-3:]}"
    return samples


def _check_samples(samples: list[dict[str, Any]]) -> None:
    brief = [(s["t"], s["state"], s["done"], s["marks"], s["hv"]) for s in samples]
    last = samples[-1]
    # the chart rendered, with a real size, inside the widget output
    assert last["kind"] in ("canvas", "svg") and last["width"] > 50 and last["height"] > 50, last
    # the run ended in the monitor, every trial counted
    assert last["state"] == "finished", brief
    assert last["total"] == 16 and last["done"] == 16, last
    # while the run was live, the trials counted grew and the chart redrew with them
    live = [s for s in samples if s["state"] == "running" and s["done"]]
    done_live = sorted({s["done"] for s in live})
    assert len(done_live) >= 2, f"no growth seen while the run was live: {brief}"
    assert len({s["hash"] for s in live}) >= 2, f"the chart never redrew while live: {brief}"
    dones = [s["done"] for s in samples if s["done"] is not None]
    assert dones == sorted(dones), f"the trial count went backwards: {brief}"
    if last["kind"] == "svg":  # the marks themselves can be counted
        marks = [s["marks"] for s in live]
        assert max(marks) > min(marks), f"the points did not grow: {brief}"
        # the hypervolume curve next to it has a point per completed trial at the end
        assert last["hv"] is not None and last["hv"] >= 2, f"no hypervolume curve: {last}"
