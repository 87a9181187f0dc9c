"""The command line, run as a user would: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DSPEX_SIM_URL"}
    return subprocess.run([sys.executable, "-m", "dspex_lab.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_demo_prints_accuracy_cost_and_latency_per_configuration() -> None:
    result = _run("demo", "--n", "20", "--speed", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("model"))
    assert "accuracy" in header and "$/example" in header and "latency p50" in header
    rows = [line for line in lines if line.startswith("sim/")]
    assert len(rows) >= 5
    accuracies = [float(line.split()[4]) for line in rows]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert max(accuracies) > min(accuracies)  # configurations really differ


def test_bad_command_line_shows_usage() -> None:
    result = _run("demo", "--n", "many")
    assert result.returncode == 2 and "invalid int value" in result.stderr
