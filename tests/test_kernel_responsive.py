"""A running optimization leaves the Jupyter kernel responsive.

``dx.optimize`` returns at once and the search goes on in the library's background
event loop, so the next cell runs while the trials do. A real kernel (jupyter_client's
``KernelManager``, this interpreter) starts a 200-trial run on the simulator (5
validation rows, 4 trials at a time, no pruning), then a trivial cell is executed
again and again while the run is live: every one must come back within a second, and
the run must have kept running (and progressing) all the while.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest_browser import jupyter_env

pytestmark = [pytest.mark.slow]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_CELL_S = 1.0
SAMPLES = 12
START_RUN = """
import dspex_lab as dx
from dspex_lab import sim
server = sim.start()
dx.configure(store={store!r})
space = dx.Space([dx.variables.model(["sim/tiny", "sim/small", "sim/medium", "sim/large"]),
                  dx.variables.module(["predict", "cot"]),
                  dx.variables.adapter(["chat", "json", "markdown"]),
                  dx.variables.temperature(0.0, 1.5)])
run = dx.optimize(dx.Predict("question -> answer"), space, "sim-math",
                  valset=dx.datasets.load("sim-math").val[:5],
                  budget=dx.Budget(trials=200), concurrency=4, pruning=False,
                  warm_start=False, seed=0)
"""
STATUS = ("import json; print(json.dumps({'state': run.state, "
          "'trials': len(run.trial_list()), 'calls': run.lm_calls}))")


@pytest.fixture()
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from jupyter_client import KernelManager

    jupyter_env(monkeypatch, tmp_path / "env")
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def _execute(kc: Any, code: str, timeout: float = 60.0) -> tuple[float, list[str]]:
    """Run ``code``; return the seconds until the kernel replied and went idle, and the
    text it printed. Fails on an error."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(_ANSI.sub("", "\n".join(msg["content"]["traceback"])))

    start = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    elapsed = time.perf_counter() - start
    assert reply["content"]["status"] == "ok", "".join(out)
    return elapsed, out


def _status(kc: Any) -> dict[str, Any]:
    _, out = _execute(kc, STATUS)
    status: dict[str, Any] = json.loads("".join(out))
    return status


@pytest.mark.timeout(180)
def test_kernel_answers_within_a_second_while_a_run_is_live(kernel: Any, tmp_path: Path
                                                           ) -> None:
    # the kernel is this interpreter (the kernelspec from conftest_browser)
    _, out = _execute(kernel, "import sys; print(sys.prefix)")
    assert Path(out[0].strip()).resolve() == Path(sys.prefix).resolve()

    start_s, _ = _execute(kernel, START_RUN.format(store=str(tmp_path / "run.duckdb")))
    assert start_s < 30, f"dx.optimize took {start_s:.1f} s to return"
    try:
        # wait until trials are really running (LM calls on the background loop)
        deadline = time.monotonic() + 60
        before = _status(kernel)
        while before["calls"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            before = _status(kernel)
        assert before["state"] == "running" and before["calls"] > 0, before

        timings = []
        for _ in range(SAMPLES):
            elapsed, out = _execute(kernel, "x = sum(range(1000)); print(x)")
            assert out == ["499500\n"], out
            timings.append(elapsed)
            time.sleep(0.3)
        after = _status(kernel)
        print(f"cell round trips (s): {[round(t, 3) for t in timings]}; "
              f"before {before}, after {after}")
        assert after["state"] == "running", f"the run ended during the measurement: {after}"
        assert after["calls"] > before["calls"], f"the run made no progress: {before} {after}"
        assert max(timings) < MAX_CELL_S, (
            f"a trivial cell took {max(timings):.3f} s while the run was live: {timings}")
    finally:
        _execute(kernel, "run.stop(); run.wait(60); print(run.state)", timeout=90)
    final = _status(kernel)
    assert final["state"] in ("stopped", "finished"), final
    assert final["trials"] < 200, f"the run was not live during the test: {final}"
