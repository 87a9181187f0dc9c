"""dx.evaluate and the metrics, against the simulator."""

from __future__ import annotations

from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab.errors import DatasetError, EvaluationAborted
from dspex_lab.programs.metrics import (
    ExactMatch,
    NormalizedMatch,
    numeric_tolerance,
    token_f1,
)


@pytest.fixture()
def lookup() -> Any:
    return dx.datasets.load("sim-lookup")


def test_result_has_score_table_cost_latency_and_failures(sim_url: str, lookup: Any) -> None:
    qa = dx.ChainOfThought(lookup.signature, model="sim/medium")
    result = dx.evaluate(qa, lookup.val[:60], "normalized_match", concurrency=16)
    assert result.n == 60 and 0.0 < result.score <= 1.0
    table = result.table
    assert len(table) == 60
    assert {"question", "expected_answer", "pred_answer", "score", "cost", "latency_s",
            "error_kind"} <= set(table.columns)
    assert result.cost == pytest.approx(table["cost"].sum())
    assert 0 < result.latency_p50_s <= result.latency_p95_s
    assert result.score == pytest.approx(table["score"].mean())
    assert "score=" in repr(result) and "<table>" in result._repr_html_()


def test_missing_field_is_reported_before_any_call(sim_url: str, sim_server: Any) -> None:
    before = sim_server.stats()["total"]
    rows = [{"question": "a", "answer": "b"}, {"questoin": "c", "answer": "d"}]
    with pytest.raises(DatasetError, match=r"Row 1 has no field 'question'"):
        dx.evaluate(dx.Predict("question -> answer", model="sim/small"), rows)
    assert sim_server.stats()["total"] == before


def test_a_failing_example_is_recorded_not_fatal(sim_url: str, lookup: Any) -> None:
    class Flaky(dx.Module):
        def __init__(self) -> None:
            self.qa = dx.Predict(lookup.signature, model="sim/small")

        async def aforward(self, question: str) -> dx.Prediction:
            if "France" in question:
                raise ValueError("boom")
            return await self.qa.acall(question=question)

    rows = [*lookup.val[:10], {"question": "What is the capital of France?", "answer": "Paris"}]
    result = dx.evaluate(Flaky(), rows, "normalized_match")
    assert result.n == 11 and result.n_failed == 1
    failure = result.failures[0]
    assert failure.index == 10 and failure.kind == "exception" and "boom" in failure.message
    assert result.table.loc[10, "score"] == 0.0


def test_max_errors_stops_a_broken_run(sim_url: str, lookup: Any) -> None:
    broken = dx.Predict(lookup.signature, lm=dx.LM("sim/small", extra_headers={
        "X-Sim-Fault": "500"}, max_retries=0))
    with pytest.raises(EvaluationAborted, match="max_errors=3") as info:
        dx.evaluate(broken, lookup.val[:200], concurrency=4, max_errors=3)
    partial = info.value.result  # type: ignore[attr-defined]
    assert partial.n < 200 and partial.n_failed >= 4
    assert {f.kind for f in partial.failures} == {"server_error"}


def test_progress_is_shown_for_long_runs(sim_url: str, lookup: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    dx.evaluate(dx.Predict(lookup.signature, model="sim/tiny"), lookup.val[:30],
                progress=True)
    assert "evaluate: 30/30 (100%)" in capsys.readouterr().err


def test_dataframe_datasets_are_accepted(sim_url: str, lookup: Any) -> None:
    import pandas as pd

    frame = pd.DataFrame(lookup.val[:5])
    result = dx.evaluate(dx.Predict(lookup.signature, model="sim/small"), frame)
    assert result.n == 5


@pytest.mark.parametrize("metric, example, pred, score", [
    (ExactMatch(), {"answer": 42}, {"answer": "42"}, 1.0),
    (ExactMatch(), {"answer": "Paris"}, {"answer": "paris"}, 0.0),
    (NormalizedMatch(), {"answer": "The Paris!"}, {"answer": "paris"}, 1.0),
    (token_f1, {"answer": "new york city"}, {"answer": "york city"}, 0.8),
    (numeric_tolerance(abs_tol=0.01), {"answer": "3.14159"}, {"answer": 3.14}, 1.0),
    (numeric_tolerance(), {"answer": "3"}, {"answer": "three"}, 0.0),
    (ExactMatch("label"), {"label": "a", "answer": "x"}, {"label": "a", "answer": "y"}, 1.0),
    (ExactMatch(), {"answer": "x"}, {}, 0.0),
])
def test_metrics(metric: Any, example: dict[str, Any], pred: dict[str, Any],
                 score: float) -> None:
    assert metric(example, pred) == pytest.approx(score)


def test_any_callable_is_a_metric(sim_url: str, lookup: Any) -> None:
    result = dx.evaluate(dx.Predict(lookup.signature, model="sim/small"), lookup.val[:5],
                         lambda ex, pred: len(pred.answer) > 0)
    assert result.score == 1.0
