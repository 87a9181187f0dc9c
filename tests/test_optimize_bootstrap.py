"""Bootstrapped demos and proposed instructions, against the real simulator over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab import recording, sim
from dspex_lab.errors import ConfigurationError, DatasetError
from dspex_lab.optimize._bootstrap import BootstrapError, abootstrap_demos, bootstrap_demos
from dspex_lab.optimize._instructions import propose_instructions
from dspex_lab.programs.predictors import pot_demos
from dspex_lab.sim._quality import INSTRUCTION_KEYWORDS

HELPFUL = [kw for kw, bonus in INSTRUCTION_KEYWORDS if sum(bonus.values()) > 0]
COT_TEACHER = {"module": "cot", "model": "sim/large"}


@pytest.fixture()
def math() -> Any:
    return dx.datasets.load("sim-math")


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "boot.duckdb"
    dx.configure(store=str(path))
    return path


def _served(sim_server: Any) -> tuple[int, dict[str, Any]]:
    stats = sim_server.stats()
    return stats["total"], stats["by_model"]


# -- bootstrapping ----------------------------------------------------------------------

def test_cot_teacher_demos_pass_carry_reasoning_and_are_accounted_for(
        sim_url: str, sim_server: Any, store_path: Path, math: Any) -> None:
    student = dx.Predict(math.signature, model="sim/tiny")
    train = math.train[:80]
    before, _ = _served(sim_server)
    result = bootstrap_demos(student, train, "exact_match", teacher_config=COT_TEACHER,
                             max_demos=8, concurrency=8, tags={"run_id": "boot-cot"})
    served = sim_server.stats()["total"] - before

    truth = {row["question"]: row["answer"] for row in train}
    assert len(result.demos) == 8
    for demo in result.demos:
        assert set(demo) == {"question", "reasoning", "answer"}
        assert demo["answer"] == truth[demo["question"]]          # it passed the metric
        assert f"So the answer is {demo['answer']}." in demo["reasoning"]
    assert result.demos_by_module == {"": result.demos}
    assert result.as_config() == {"demos": result.demos}
    assert result.rows_passed >= 8 and result.rows_tried < len(train)  # stopped early
    assert result.rows_tried == (result.rows_passed + result.rows_below_threshold
                                 + sum(result.failures.values()))
    assert result.rounds == 1

    # every call the simulator served is counted, and the store agrees on calls and dollars
    assert result.calls == served >= result.rows_tried
    assert sim_server.stats()["by_model"]["large"]["total"] >= served
    store = recording.active_store()
    assert store is not None
    store.flush()
    rows = dx.sql("select count(*) as n, sum(cost) as c from executions "
                  "where kind = 'lm' and run_id = 'boot-cot'")
    assert rows["n"][0] == result.calls
    assert result.cost is not None and result.cost > 0
    assert rows["c"][0] == pytest.approx(result.cost)
    assert result.uncached_cost == pytest.approx(result.cost)  # the cache is off in tests

    # the same seed finds the same demos; the student gets better with them
    again = bootstrap_demos(student, train, "exact_match", teacher_config=COT_TEACHER,
                            max_demos=8, concurrency=3)
    assert again.demos == result.demos
    tiny = {"model": "sim/tiny", "module": "predict", "temperature": 0.0}
    with_demos = sim.expected_metrics({**tiny, "demos": result.demos}, "sim-math", "val")
    without = sim.expected_metrics({**tiny, "demos": 0}, "sim-math", "val")
    assert with_demos.accuracy > without.accuracy + 0.05
    configured = student.with_config(result.as_config())
    assert len(configured.config()["predict"]["demos"]) == 8
    cot_student = student.with_config({**result.as_config(), "module": "cot"})
    assert cot_student(question=math.val[0]["question"]).answer is not None


def test_async_form_and_a_different_seed(sim_url: str, math: Any) -> None:
    student = dx.Predict(math.signature, model="sim/small")

    async def both() -> tuple[Any, Any]:
        first = await abootstrap_demos(student, math.train[:40], "exact_match",
                                       teacher_config=COT_TEACHER, max_demos=4, seed=0)
        second = await abootstrap_demos(student, math.train[:40], "exact_match",
                                        teacher_config=COT_TEACHER, max_demos=4, seed=1)
        return first, second

    first, second = dx.lm.run_sync(both())
    assert len(first.demos) == len(second.demos) == 4
    assert first.demos != second.demos


def test_program_of_thought_demos_carry_working_code(sim_url: str, math: Any) -> None:
    student = dx.ProgramOfThought(math.signature, model="sim/small")
    result = bootstrap_demos(student, math.train[:12], "exact_match",
                             teacher_config={"model": "sim/large"}, max_demos=2)
    assert len(result.demos) == 2
    for demo in result.demos:
        assert demo["code"].startswith("# attempt") and "print(" in demo["code"]
    assert pot_demos(student.signature, result.demos) == result.demos


def test_composite_program_gets_demos_per_module(sim_url: str, math: Any) -> None:
    class DraftAndCheck(dx.Module):
        def __init__(self) -> None:
            self.draft = dx.Predict(math.signature, model="sim/tiny")
            self.check = dx.Predict("answer: int, question -> verdict: bool",
                                    model="sim/tiny")

        def forward(self, question: str) -> Any:  # sync: runs in a worker thread
            draft = self.draft(question=question)
            self.check(answer=draft.answer, question=question)  # not a dataset question first
            return draft

    program = DraftAndCheck()
    result = bootstrap_demos(program, math.train[:30], "exact_match",
                             teacher_config={"draft": COT_TEACHER}, max_demos=3)
    assert set(result.demos_by_module) == {"draft", "check"}
    drafts, checks = result.demos_by_module["draft"], result.demos_by_module["check"]
    assert len(drafts) == len(checks) == 3
    assert all({"question", "reasoning", "answer"} == set(d) for d in drafts)
    assert all({"question", "answer", "verdict"} == set(d) for d in checks)
    assert [d["answer"] for d in drafts] == [d["answer"] for d in checks]
    assert [d["question"] for d in result.demos] == [d["question"] for d in drafts]
    tuned = program.with_config(result.as_config())
    assert tuned.config()["check"]["demos"] == checks
    assert tuned.config()["draft"]["module"] == "predict"  # only demos move to the student


def test_later_rounds_resample_the_rows_that_failed(sim_url: str, sim_server: Any,
                                                    math: Any) -> None:
    weak = dx.Predict(math.signature, model="sim/tiny", temperature=1.0)
    train = math.train[:30]
    one = bootstrap_demos(weak, train, "exact_match", max_demos=30)
    three = bootstrap_demos(weak, train, "exact_match", max_demos=30, max_rounds=3)
    assert one.rounds == 1 and one.rows_tried == 30
    assert three.rounds == 3 and three.rows_tried > 30
    assert three.rows_passed > one.rows_passed
    first_round = {r["index"] for r in three.rows if r["round"] == 0 and r["score"] == 1.0}
    assert not any(r["index"] in first_round for r in three.rows if r["round"] > 0)


# -- errors -----------------------------------------------------------------------------

def test_empty_trainset_and_missing_fields_fail_before_any_call(
        sim_url: str, sim_server: Any, math: Any) -> None:
    student = dx.Predict(math.signature, model="sim/tiny")
    before = sim_server.stats()["total"]
    with pytest.raises(DatasetError, match="trainset is empty"):
        bootstrap_demos(student, [], "exact_match")
    no_answer = [{"question": row["question"]} for row in math.train[:5]]
    with pytest.raises(DatasetError, match=r"Row 0 has no field 'answer'.*metric"):
        bootstrap_demos(student, no_answer, "exact_match")
    with pytest.raises(DatasetError, match="Row 0 has no field 'question'"):
        bootstrap_demos(student, [{"answer": 3}], "exact_match")
    with pytest.raises(ConfigurationError, match="max_demos"):
        bootstrap_demos(student, math.train[:5], "exact_match", max_demos=0)
    assert sim_server.stats()["total"] == before


def test_nothing_passing_raises_with_the_bookkeeping(sim_url: str, math: Any) -> None:
    student = dx.Predict(math.signature, model="sim/tiny")
    with pytest.raises(BootstrapError, match=r"No demo passed: 6 row\(s\) tried.*threshold 1"
                       ) as info:
        bootstrap_demos(student, math.train[:6], lambda row, pred: 0.0)
    result = info.value.result
    assert result.rows_tried == 6 and result.rows_passed == 0 and result.demos == []
    assert result.rows_below_threshold + sum(result.failures.values()) == 6
    assert result.calls >= 6 and info.value.kind == "bootstrap"
    assert isinstance(info.value, dx.DspexError)

    def broken(row: Any, pred: Any) -> float:
        return float(row["missing"])

    with pytest.raises(BootstrapError, match=r"metric: 4.*KeyError") as info:
        bootstrap_demos(student, math.train[:4], broken)
    assert info.value.result.failures == {"metric": 4}


# -- proposed instructions ------------------------------------------------------------

def test_proposals_are_distinct_deterministic_and_start_with_the_current(
        sim_url: str, math: Any) -> None:
    sig = dx.Signature(math.signature)
    proposals = propose_instructions(math.signature, math.train[:30], lm="sim/small", n=5)
    assert len(proposals) == 6 and proposals[0] == sig.instructions
    assert len({" ".join(p.lower().split()) for p in proposals}) == 6
    assert proposals.calls >= 5 and proposals.cost is not None and proposals.cost > 0
    assert any(kw in p.lower() for p in proposals[1:] for kw in HELPFUL)
    assert propose_instructions(math.signature, math.train[:30], lm="sim/small", n=5) \
        == proposals
    other = propose_instructions(math.signature, math.train[:30], lm="sim/small", n=5, seed=1)
    assert other[0] == proposals[0] and other[1:] != proposals[1:]
    custom = propose_instructions(math.signature, math.train[:30], lm="sim/small", n=2,
                                  current_instructions="Answer the question.")
    assert custom[0] == "Answer the question." and len(custom) == 3


def test_the_best_proposal_beats_a_guessing_one(sim_url: str, math: Any) -> None:
    candidates: list[str] = []
    for seed in range(3):
        candidates += propose_instructions(math.signature, math.train[:30], lm="sim/tiny",
                                           n=5, seed=seed)[1:]
    guessing = [c for c in candidates if "guess" in c.lower()]
    assert guessing, candidates  # a weak proposer sometimes suggests guessing

    def accuracy(instructions: str) -> float:
        config = {"model": "sim/small", "module": "predict", "instructions": instructions}
        return sim.expected_metrics(config, "sim-math", "val").accuracy

    best = max(candidates, key=accuracy)
    assert accuracy(best) > accuracy(guessing[0]) + 0.03
    assert accuracy(best) > accuracy(dx.Signature(math.signature).instructions)


def test_proposals_carry_tags_and_count_failed_calls(sim_url: str, store_path: Path,
                                                     math: Any) -> None:
    propose_instructions(math.signature, math.train[:10], lm="sim/small", n=3,
                         tags={"run_id": "propose-1"})
    store = recording.active_store()
    assert store is not None
    store.flush()
    tagged = dx.sql("select count(*) as n from executions "
                    "where kind = 'lm' and run_id = 'propose-1'")["n"][0]
    assert tagged >= 3

    failing = dx.LM("sim/small", extra_headers={"X-Sim-Fault": "500"}, max_retries=0)
    only = propose_instructions(math.signature, math.train[:10], lm=failing, n=3)
    assert list(only) == [dx.Signature(math.signature).instructions]
    assert only.failures == {"server_error": 6}  # n calls, then at most n more


def test_proposals_need_an_lm(math: Any) -> None:
    with pytest.raises(ConfigurationError, match="No LM to propose"):
        propose_instructions(math.signature, math.train[:3])
