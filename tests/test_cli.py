"""The command line, run as a user would: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(*args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DSPEX_SIM_URL"}
    if store is not None:
        env["DSPEX_STORE"] = str(store)
    return subprocess.run([sys.executable, "-m", "dspex_lab.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_demo_optimizes_records_and_writes_the_pareto_chart(tmp_path: Path) -> None:
    store, chart = tmp_path / "demo.duckdb", tmp_path / "front.svg"
    result = _run("demo", "--n", "12", "--trials", "6", "--speed", "0", "--chart", str(chart),
                  store=store)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Pareto front" in out and "strategy" in out
    trial_lines = [line for line in out.splitlines() if line.strip().startswith("#")]
    assert len(trial_lines) == 6
    accuracies = [float(line.split("accuracy")[1].split()[0]) for line in trial_lines
                  if "accuracy" in line]
    assert accuracies and all(0.0 <= a <= 1.0 for a in accuracies)
    assert chart.read_text().lstrip().startswith(("<svg", "<?xml"))
    counted = _run("sql", "select count(*) as n from trials", "--store", str(store))
    assert counted.returncode == 0, counted.stderr
    assert "6" in counted.stdout


def test_bad_command_line_shows_usage() -> None:
    result = _run("demo", "--n", "many")
    assert result.returncode == 2 and "invalid int value" in result.stderr
