"""A simulated OpenAI-compatible LLM provider for testing and benchmarking without network.

``start()`` serves models ``tiny``, ``small``, ``medium`` and ``large`` on
127.0.0.1. They read prompts written per ``docs/internals/prompt-protocol.md``,
answer the built-in datasets' questions with a documented, deterministic
quality function, charge the catalog prices and report a simulated latency.
Faults (429, 500, hangs, truncated bodies) can be injected by rate or per
request. ``expected_metrics`` computes the exact expected accuracy, cost and
latency of a configuration. Nothing in the library imports this package.
See ``docs/simulator.md``.
"""

from __future__ import annotations

from dspex_lab.sim._app import LATENCY_HEADER
from dspex_lab.sim._expected import ExpectedMetrics, expected_metrics
from dspex_lab.sim._faults import FAULT_HEADER, Faults
from dspex_lab.sim._server import SimServer, serve_forever, start

__all__ = [
    "FAULT_HEADER",
    "LATENCY_HEADER",
    "ExpectedMetrics",
    "Faults",
    "SimServer",
    "expected_metrics",
    "serve_forever",
    "start",
]
