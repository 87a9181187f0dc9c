"""Shared fixtures: a scrubbed environment, fresh settings, a live simulator.

No test may reach a real provider: every ``*_API_KEY`` is removed from the
environment before each test, and the simulator is the only endpoint.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Recording is on by default: keep the test session's store out of the working tree.
_SESSION_DIR = tempfile.mkdtemp(prefix="dspex-tests-")
os.environ["DSPEX_STORE"] = os.path.join(_SESSION_DIR, "session.duckdb")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name in (
                "DSPEX_SIM_URL", "DSPEX_LM", "AZURE_OPENAI_ENDPOINT", "HF_TOKEN"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Restore defaults, the recording store and the cache after each test.

    The response cache is off in tests unless a test turns it on: many tests
    count what the simulator served, which a cache hit would hide.
    """
    from dspex_lab import recording, settings

    saved = settings._global
    saved_store, saved_explicit = recording._store, recording._explicit
    recording.set_cache_enabled(False)
    yield
    settings._global = saved
    if recording._store is not saved_store:
        if recording._store is not None:
            recording._store.close()
        recording._store, recording._explicit = saved_store, saved_explicit
    recording.set_cache_enabled(False)


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
