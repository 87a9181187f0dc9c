"""The static report in headless Chromium, opened from disk with the network refused.

A report is only useful if it opens anywhere: here every request that is not the
file itself is aborted, and the page must still show both charts (decoded images,
``naturalWidth > 0``) and one table row per trial, in the run's order and states.
A screenshot goes to ``test-artifacts/browser/report.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab.app._export import export_report
from tests.conftest_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

V = dx.variables


@pytest.mark.browser
@pytest.mark.timeout(240)  # a run, Altair and vl-convert's first start, Chromium
def test_the_report_opens_offline_with_its_charts_and_every_trial(
        tmp_path: Path, sim_url: str) -> None:
    require_chromium()
    from playwright.sync_api import Route, sync_playwright

    dx.configure(store=tmp_path / "r.duckdb")
    space = dx.Space([V.module(["predict", "cot"]), V.model(["sim/tiny", "sim/small"]),
                      V.temperature(0.0, 1.0)])
    run = dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                      valset=dx.datasets.load("sim-math").val[:10], strategy="random",
                      seed=3, budget=dx.Budget(trials=6), warm_start=False,
                      name="browser-report").wait(120)
    report = export_report(run, tmp_path / "report.html")

    refused: list[str] = []

    def refuse_network(route: Route) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    shots = ARTIFACTS / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.route("**/*", refuse_network)
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            images: list[dict[str, Any]] = page.eval_on_selector_all(
                "img", "els => els.map(e => ({id: e.id, complete: e.complete, "
                       "width: e.naturalWidth, height: e.naturalHeight}))")
            rows: list[dict[str, str]] = page.eval_on_selector_all(
                "#trials tbody tr", "els => els.map(e => ({trial: e.dataset.trial, "
                                    "state: e.dataset.state, "
                                    "first: e.cells[0].innerText, "
                                    "second: e.cells[1].innerText}))")
            history_rows = page.locator("#history tbody tr").count()
            front_rows = page.locator("#front tbody tr").count()
            title = page.title()
            page.screenshot(path=str(shots / "report.png"), full_page=True)
        finally:
            browser.close()

    assert refused == [] and failed == []  # nothing but the file was even asked for
    assert {i["id"] for i in images} == {"front-chart", "history-chart"}
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    trials = sorted(run.trial_list(), key=lambda t: t.number)
    assert [(r["trial"], r["state"]) for r in rows] == [(str(t.number), t.state)
                                                        for t in trials]
    assert [(r["first"], r["second"]) for r in rows] == [(str(t.number), t.state)
                                                         for t in trials]
    assert history_rows == len(run.hypervolume_history()) > 0
    assert front_rows == len(run.front_trials()) > 0
    assert run.run_id in title and "browser-report" in title
