"""Shared fixtures: a scrubbed environment, fresh settings, a live simulator.

No test may reach a real provider: every ``*_API_KEY`` is removed from the
environment before each test, and the simulator is the only endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name in (
                "DSPEX_SIM_URL", "AZURE_OPENAI_ENDPOINT", "HF_TOKEN"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from dspex_lab import settings

    saved = settings._global
    yield
    settings._global = saved


@pytest.fixture(scope="session")
def sim_server() -> Iterator[object]:
    """One simulator for the session, with no real waiting (speed 0)."""
    from dspex_lab import sim

    server = sim.start(speed=0.0, seed=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def sim_url(sim_server: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """The simulator's base URL, also exported as DSPEX_SIM_URL for ``dx.LM("sim/...")``."""
    url: str = sim_server.base_url  # type: ignore[attr-defined]
    monkeypatch.setenv("DSPEX_SIM_URL", url)
    sim_server.set_faults()  # type: ignore[attr-defined]
    return url
