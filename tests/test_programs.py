"""Modules and programs over real HTTP against the simulator."""

from __future__ import annotations

from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab import events
from dspex_lab.errors import ConfigurationError, ParseError, SandboxError


@pytest.fixture()
def math() -> Any:
    return dx.datasets.load("sim-math")


@pytest.fixture()
def configured(sim_url: str) -> None:
    dx.configure(lm=dx.LM("sim/large"))


def test_predict_answers_with_typed_fields(configured: None, math: Any) -> None:
    qa = dx.Predict(math.signature)
    row = math.val[0]
    pred = qa(question=row["question"])
    assert isinstance(pred.answer, int)
    assert pred.lm_calls == 1 and pred.cost is not None and pred.cost > 0
    assert pred.latency_s > 0


def test_chain_of_thought_adds_reasoning(configured: None, math: Any) -> None:
    cot = dx.ChainOfThought(math.signature)
    pred = cot(question=math.val[1]["question"])
    assert set(pred) == {"reasoning", "answer"}
    assert isinstance(pred.reasoning, str) and pred.reasoning


@pytest.mark.parametrize("adapter", ["chat", "json", "markdown"])
def test_every_adapter_round_trips_through_the_simulator(configured: None, math: Any,
                                                         adapter: str) -> None:
    qa = dx.ChainOfThought(math.signature, adapter=adapter)
    result = dx.evaluate(qa, math.val[:40], "exact_match")
    assert result.n_failed <= 2
    assert result.score > 0.5


def test_program_of_thought_runs_the_models_code(configured: None, math: Any) -> None:
    pot = dx.ProgramOfThought(math.signature)
    result = dx.evaluate(pot, math.val[:30], "exact_match")
    assert result.score > 0.5
    preds = [r for r in result.rows if r.get("pred_code")]
    assert preds and all("print" in r["pred_code"] for r in preds)


def test_program_of_thought_reports_code_that_keeps_failing(sim_url: str) -> None:
    # an unknown question on the weakest model: the code cannot compute an int answer
    pot = dx.ProgramOfThought("question -> answer: int", model="sim/tiny", max_code_retries=1)
    try:
        pot(question="Compute the airspeed of an unladen swallow.")
    except SandboxError as exc:
        assert "failed 2 time(s)" in str(exc)
    # (if the simulator's code happened to print an int, the call succeeded legitimately)


def test_user_program_class_composes_modules_addressable_by_name(configured: None,
                                                                 math: Any) -> None:
    class TwoStep(dx.Module):
        def __init__(self) -> None:
            self.draft = dx.ChainOfThought(math.signature)
            self.checks = [dx.Predict(math.signature)]

        def forward(self, question: str) -> dx.Prediction:
            first = self.draft(question=question)
            self.checks[0](question=question)
            return first

    program = TwoStep()
    assert list(program.named_modules()) == ["draft", "checks[0]"]
    assert program.input_names() == ["question"]
    pred = program(question=math.val[2]["question"])
    assert pred.lm_calls == 2  # both modules' calls are metered under the program call

    tuned = program.with_config({"adapter": "json", "draft.module": "predict",
                                 "checks[0]": {"temperature": 0.3, "model": "sim/small"}})
    assert program.config()["draft"]["module"] == "cot"  # the original is untouched
    cfg = tuned.config()
    assert cfg["draft"]["module"] == "predict" and cfg["draft"]["adapter"] == "json"
    assert cfg["checks[0]"] == {**cfg["checks[0]"], "temperature": 0.3, "model": "sim/small"}
    assert tuned(question=math.val[2]["question"]).answer is not None


def test_async_user_program(configured: None, math: Any) -> None:
    class Parallel(dx.Module):
        def __init__(self) -> None:
            self.a = dx.Predict(math.signature)
            self.b = dx.Predict(math.signature, model="sim/small")

        async def aforward(self, question: str) -> dict[str, Any]:
            import asyncio

            x, y = await asyncio.gather(self.a.acall(question=question),
                                        self.b.acall(question=question))
            return {"answer": x.answer, "other": y.answer}

    pred = Parallel()(question=math.val[3]["question"])
    assert set(pred) == {"answer", "other"} and pred.lm_calls == 2


def test_function_program(configured: None, math: Any) -> None:
    @dx.program(gen=dx.Predict(math.signature))
    def qa(question: str, *, gen: dx.Predict) -> dx.Prediction:
        return gen(question=question)

    assert list(qa.named_modules()) == ["gen"] and qa.input_names() == ["question"]
    assert isinstance(qa(question=math.val[0]["question"]).answer, int)
    cot = qa.with_config({"gen.module": "cot"})
    assert "reasoning" in cot(question=math.val[0]["question"])


def test_function_program_must_accept_its_modules() -> None:
    with pytest.raises(ConfigurationError, match="keyword-only parameter"):
        @dx.program(gen=dx.Predict("q -> a"))
        def broken(q: str) -> None: ...


@pytest.mark.parametrize("config, message", [
    ({"adaptor": "json"}, "Did you mean 'adapter'"),
    ({"adapter": "xml"}, "must be one of"),
    ({"module": "react"}, "must be one of"),
    ({"temperature": 3}, r"\[0, 2\]"),
    ({"max_tokens": 0}, "positive integer"),
    ({"demos": "three"}, "list of dicts"),
    ({"nosuch.adapter": "json"}, "No module named 'nosuch'"),
])
def test_bad_config_is_refused_before_any_call(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        dx.Predict("question -> answer").with_config(config)


def test_no_lm_configured_is_a_clear_error() -> None:
    dx.configure(lm=None)
    with pytest.raises(ConfigurationError, match=r"dx.configure\(lm="):
        dx.Predict("question -> answer")(question="hi")


def test_demos_and_instructions_reach_the_prompt(sim_url: str, math: Any) -> None:
    seen: list[Any] = []
    sub = events.subscribe(lambda e: seen.append(e.record), "lm.completed")
    try:
        qa = dx.Predict(math.signature, model="sim/small", demos=math.demos(2),
                        instructions="Answer with only the number.")
        qa(question=math.val[0]["question"])
        sub.flush()
    finally:
        sub.close()
    messages = seen[-1].messages
    assert sum(m["role"] == "assistant" for m in messages) == 2
    assert "Your task: Answer with only the number." in messages[0]["content"]


def test_parse_failure_falls_back_once_then_raises_with_raw_text(sim_url: str) -> None:
    fallbacks: list[Any] = []
    sub = events.subscribe(lambda e: fallbacks.append(e.record), "program.parse_fallback")
    failed: list[Any] = []
    sub2 = events.subscribe(lambda e: failed.append(e.record), "program.failed")
    try:
        # 2 tokens cannot hold the required fields in any format
        qa = dx.Predict("question -> answer, explanation", model="sim/small", max_tokens=2)
        with pytest.raises(ParseError) as info:
            qa(question="What is the capital of France?")
        sub.flush()
        sub2.flush()
    finally:
        sub.close()
        sub2.close()
    assert "'chat'" in str(info.value) and "'json'" in str(info.value)
    assert info.value.raw != ""
    assert len(fallbacks) == 1 and fallbacks[0]["fallback"] == "json"
    assert failed and failed[-1].error_kind == "parse_error" and failed[-1].raw_text


def test_program_events_link_lm_calls_to_their_program_call(configured: None,
                                                            math: Any) -> None:
    got: list[events.Event] = []
    sub = events.subscribe(got.append, ["lm.completed", "program.completed"])
    try:
        dx.ChainOfThought(math.signature)(question=math.val[0]["question"])
        sub.flush()
    finally:
        sub.close()
    program = next(e.record for e in got if e.kind == "program.completed")
    lm_calls = [e.record for e in got if e.kind == "lm.completed"]
    assert lm_calls and all(c.parent_id == program.call_id for c in lm_calls)
    assert all(c.trace_id == program.trace_id for c in lm_calls)
    assert program.config["module"] == "cot" and program.outputs["answer"] is not None
