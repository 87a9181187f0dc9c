"""Recording on by default, dx.sql, and the persistent LM response cache (real DuckDB files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab import recording


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "runs" / "test.duckdb"
    dx.configure(store=str(path))
    return path


@pytest.fixture()
def lookup() -> Any:
    return dx.datasets.load("sim-lookup")


def test_evaluate_is_recorded_with_lm_calls_linked_to_program_calls(
        sim_url: str, store_path: Path, lookup: Any) -> None:
    qa = dx.ChainOfThought(lookup.signature, model="sim/small")
    result = dx.evaluate(qa, lookup.val[:20], "normalized_match")
    counts = dx.sql("select kind, count(*) as n from executions "
                    "where kind in ('lm', 'program') group by kind order by kind")
    assert dict(zip(counts["kind"], counts["n"], strict=True)) == {
        "lm": result.lm_calls, "program": 20}
    orphans = dx.sql("""
        select count(*) as n from executions l
        where l.kind = 'lm' and not exists (
            select 1 from executions p where p.kind = 'program' and p.call_id = l.parent_id)""")
    assert orphans["n"][0] == 0
    spent = dx.sql("select sum(cost) as c from executions where kind = 'lm'")["c"][0]
    assert spent == pytest.approx(result.cost)


def test_sql_binds_parameters_and_refuses_writes(sim_url: str, store_path: Path) -> None:
    dx.Predict("question -> answer", model="sim/small")(question="What is the capital of Peru?")
    hostile = "x'; drop table executions; --"
    assert dx.sql("select count(*) as n from executions where model = ?", [hostile])["n"][0] == 0
    assert dx.sql("select count(*) as n from executions where model = $m",
                  {"m": "sim/small"})["n"][0] >= 1
    with pytest.raises(dx.DspexError, match="read-only"):
        dx.sql("delete from executions")
    assert dx.sql("select count(*) as n from executions")["n"][0] >= 1


def test_store_none_turns_recording_off(sim_url: str, tmp_path: Path) -> None:
    dx.configure(store=None)
    dx.Predict("question -> answer", model="sim/small")(question="hello")
    with pytest.raises(dx.ConfigurationError, match="Recording is off"):
        dx.sql("select 1")


def test_default_store_is_opened_on_first_call_and_records(sim_url: str, tmp_path: Path) -> None:
    target = tmp_path / "default.duckdb"
    code = (
        "import dspex_lab as dx\n"
        "dx.Predict('question -> answer', model='sim/small')(question='What is 2 + 2?')\n"
        "print(dx.sql('select count(*) as n from executions')['n'][0])\n")
    env = {**os.environ, "DSPEX_STORE": str(target), "DSPEX_SIM_URL": sim_url}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    assert int(out.stdout.strip()) == 2  # one program call, one LM call
    assert target.exists()


def test_sql_reads_another_store_per_call(sim_url: str, store_path: Path,
                                          tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    with dx.Store(other):
        pass
    assert dx.sql("select count(*) as n from executions", store=str(other))["n"][0] == 0


def test_cache_hit_is_free_but_carries_the_original_cost(sim_url: str, store_path: Path,
                                                         sim_server: Any) -> None:
    dx.cache.enable()
    lm = dx.LM("sim/small")
    prompt = "A question only this test asks: 31 + 11?"
    first = lm(prompt)
    before = sim_server.stats()["total"]
    second = lm(prompt)
    assert sim_server.stats()["total"] == before  # served from the cache
    assert second.cache_hit and second.text == first.text
    assert second.cost == 0.0 and second.uncached_cost == pytest.approx(first.cost)
    assert second.latency_s < first.latency_s
    assert second.objective_latency_s == pytest.approx(first.latency_s)
    assert lm(prompt, cache=False).cache_hit is False


def test_evaluate_reports_uncached_cost_for_optimizers(sim_url: str, store_path: Path,
                                                       lookup: Any) -> None:
    dx.cache.enable()
    qa = dx.Predict(lookup.signature, model="sim/medium")
    cold = dx.evaluate(qa, lookup.val[:15])
    warm = dx.evaluate(qa, lookup.val[:15])
    assert warm.cost == 0.0
    assert warm.uncached_cost == pytest.approx(cold.cost)
    assert warm.uncached_latency_mean_s == pytest.approx(
        sum(r["latency_s"] for r in cold.rows) / 15)


def test_cache_persists_across_processes_and_clears(sim_url: str, tmp_path: Path) -> None:
    target = tmp_path / "cache.duckdb"
    code = (
        "import dspex_lab as dx\n"
        "r = dx.LM('sim/small')('Persist me: 5 + 8?')\n"
        "print(r.cache_hit)\n")
    env = {**os.environ, "DSPEX_STORE": str(target), "DSPEX_SIM_URL": sim_url}

    def run() -> str:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True, timeout=60).stdout.strip()

    assert run() == "False"
    assert run() == "True"
    dx.configure(store=str(target))
    dx.cache.enable()
    dx.cache.clear()
    recording.set_store(None)  # release the file for the next process
    assert run() == "False"


def test_injected_faults_every_attempt_is_a_row_and_nothing_is_lost(
        sim_url: str, sim_server: Any, store_path: Path, lookup: Any) -> None:
    """20% faults (429, 500, hangs, truncated bodies): the run completes, and the store
    holds one row per request the simulator served, each failed one with its kind."""
    sim_server.set_faults(rate_429=0.05, rate_500=0.05, rate_hang=0.05, rate_truncated=0.05,
                          retry_after_s=0.01, hang_s=5)
    before = sim_server.stats()["total"]
    try:
        lm = dx.LM("sim/small", timeout=0.5, max_retries=12)
        qa = dx.Predict(lookup.signature, lm=lm)
        result = dx.evaluate(qa, lookup.val[:150], "normalized_match")
    finally:
        sim_server.set_faults()
    served = sim_server.stats()["total"] - before
    store = recording.active_store()
    assert store is not None
    store.flush()
    assert result.n == 150
    # retries absorbed every fault; what fails is the model's own format errors
    assert {f.kind for f in result.failures} <= {"parse_error"}
    rows = dx.sql("select error_kind, count(*) as n from executions where kind = 'lm' "
                  "group by error_kind")
    by_kind = dict(zip(rows["error_kind"].fillna("ok"), rows["n"], strict=True))
    assert sum(by_kind.values()) == served
    assert by_kind["ok"] == result.lm_calls
    assert {"rate_limit", "server_error", "timeout"} <= set(by_kind)
    assert by_kind.get("connection", 0) + by_kind.get("bad_response", 0) > 0  # truncated
