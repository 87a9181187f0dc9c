"""``DSPEX_LM`` names the model used when none is configured (Binder sets it to the simulator)."""

from __future__ import annotations

import pytest

import dspex_lab as dx
from dspex_lab import events
from dspex_lab.errors import ConfigurationError


def _models_called(monkeypatch: pytest.MonkeyPatch, env: str | None) -> list[str]:
    """Run one prediction and return the models of the LM calls it made (from the bus)."""
    if env is not None:
        monkeypatch.setenv("DSPEX_LM", env)
    seen: list[str] = []
    with events.subscribe(lambda e: seen.append(e.record.model), "lm.completed"):
        pred = dx.Predict("question -> answer")(question="What is 2 + 3?")
    assert pred.lm_calls == 1
    return seen


def test_dspex_lm_is_the_default_model(sim_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _models_called(monkeypatch, "sim/small") == ["sim/small"]


def test_configured_lm_wins_over_the_environment(sim_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dx.configure(lm=dx.LM("sim/tiny"))
    assert _models_called(monkeypatch, "sim/small") == ["sim/tiny"]


def test_without_any_lm_the_error_says_how_to_set_one() -> None:
    with pytest.raises(ConfigurationError, match="DSPEX_LM"):
        dx.Predict("question -> answer")(question="hi")


def test_a_bad_dspex_lm_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSPEX_LM", "nonsense")
    with pytest.raises(ConfigurationError, match="DSPEX_LM='nonsense'"):
        dx.Predict("question -> answer")(question="hi")
