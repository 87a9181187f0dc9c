"""The LM layer over real HTTP against the simulator: calls, prices, retries, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab import events
from dspex_lab.errors import (
    ConfigurationError,
    LMConnectionError,
    LMError,
    LMRateLimitError,
    LMRequestError,
    LMServerError,
    LMTimeoutError,
    MissingAPIKeyError,
)
from dspex_lab.lm import UnknownPriceWarning, lookup_price
from dspex_lab.lm._builtin_models import BUILTIN_MODELS
from dspex_lab.lm._pricing import price_map

PROMPT = [{"role": "user", "content": "Say hello."}]


class Collector:
    def __init__(self, kinds: str | list[str] = "lm.*") -> None:
        self.events: list[events.Event] = []
        self.sub = events.subscribe(self.events.append, kinds)

    def flush(self) -> list[events.Event]:
        self.sub.flush()
        return self.events

    def close(self) -> None:
        self.sub.close()


@pytest.fixture()
def collector() -> Any:
    c = Collector()
    yield c
    c.close()


def test_call_reports_usage_cost_and_simulated_latency(sim_url: str) -> None:
    lm = dx.LM("sim/small")
    reply = lm(PROMPT)
    assert reply.text
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    price = BUILTIN_MODELS["sim/small"]
    expected = (reply.usage.prompt_tokens * price.input_cost_per_token
                + reply.usage.completion_tokens * price.output_cost_per_token)
    assert reply.cost == pytest.approx(expected)
    # speed 0: the server does not sleep, but reports the latency it simulates
    assert reply.latency_s > 0.05 > reply.wall_s or reply.latency_s > reply.wall_s
    assert reply.attempts == 1


def test_async_api_runs_many_calls_concurrently(sim_url: str) -> None:
    lm = dx.LM("sim/small")

    async def many() -> list[dx.LMResponse]:
        return await asyncio.gather(*(lm.acall(f"question {i}") for i in range(50)))

    replies = dx.lm.run_sync(many())
    assert len(replies) == 50 and all(r.text for r in replies)


def test_sync_api_works_while_an_event_loop_runs_in_this_thread(sim_url: str) -> None:
    # Jupyter runs an event loop in the main thread; the sync API must still work there.
    lm = dx.LM("sim/small")

    async def inside_running_loop() -> str:
        return lm("hello").text

    assert asyncio.run(inside_running_loop())


def test_sync_call_from_the_background_loop_is_refused_with_advice(sim_url: str) -> None:
    lm = dx.LM("sim/small")

    async def misuse() -> None:
        lm("hello")

    with pytest.raises(RuntimeError, match="await"):
        dx.lm.run_sync(misuse())


def test_extra_params_reach_the_server(sim_url: str) -> None:
    lm = dx.LM("sim/small", max_tokens=3)
    reply = lm("Write a long story.")
    assert reply.usage.completion_tokens <= 3
    assert reply.finish_reason == "length"


def test_unknown_model_is_a_request_error_and_not_retried(sim_url: str,
                                                          collector: Collector) -> None:
    lm = dx.LM("sim/nonexistent", price_in=1, price_out=1)
    with pytest.raises(LMRequestError, match="404"):
        lm(PROMPT)
    failed = [e for e in collector.flush() if e.kind == "lm.failed"]
    assert len(failed) == 1 and not failed[0].record.will_retry


def _fault_lm(fault: str, **kwargs: Any) -> dx.LM:
    return dx.LM("sim/small", extra_headers={"X-Sim-Fault": fault}, **kwargs)


def test_429_is_retried_honouring_retry_after_then_raised(sim_url: str,
                                                          collector: Collector) -> None:
    lm = _fault_lm("429", max_retries=2)
    started = time.perf_counter()
    with pytest.raises(LMRateLimitError, match="after 3 attempts"):
        lm(PROMPT)
    elapsed = time.perf_counter() - started
    failed = [e.record for e in collector.flush() if e.kind == "lm.failed"]
    assert [r.attempt for r in failed] == [1, 2, 3]
    assert [r.will_retry for r in failed] == [True, True, False]
    assert all(r.error_kind == "rate_limit" for r in failed)
    # the simulator sends Retry-After: 0.05 s; two waits of at least that long
    assert elapsed >= 0.1


def test_500_is_retried_then_raised(sim_url: str) -> None:
    with pytest.raises(LMServerError):
        _fault_lm("500", max_retries=1)(PROMPT)


def test_hang_times_out_within_the_limit(sim_url: str) -> None:
    lm = _fault_lm("hang", timeout=0.3, max_retries=1)
    started = time.perf_counter()
    with pytest.raises(LMTimeoutError):
        lm(PROMPT)
    assert time.perf_counter() - started < 0.3 * 2 + 0.6  # two attempts plus a short backoff


def test_truncated_body_is_a_retryable_connection_or_response_error(sim_url: str) -> None:
    with pytest.raises(LMError) as info:
        _fault_lm("truncate", max_retries=1)(PROMPT)
    assert info.value.retryable
    assert isinstance(info.value, LMConnectionError) or info.value.kind == "bad_response"


def test_random_faults_are_absorbed_by_retries_and_every_attempt_is_reported(
        sim_server: Any, sim_url: str, collector: Collector) -> None:
    sim_server.set_faults(rate_429=0.1, rate_500=0.1, rate_truncated=0.05, retry_after_s=0.01)
    before = sim_server.stats()["total"]
    lm = dx.LM("sim/small", max_retries=10)

    async def many() -> list[dx.LMResponse]:
        return await asyncio.gather(*(lm.acall(f"fault question {i}") for i in range(200)))

    try:
        replies = dx.lm.run_sync(many())
    finally:
        sim_server.set_faults()
    assert len(replies) == 200
    got = collector.flush()
    completed = [e for e in got if e.kind == "lm.completed"]
    failed = [e for e in got if e.kind == "lm.failed"]
    assert len(completed) == 200
    assert failed, "with 25% faults some attempts must have failed"
    served = sim_server.stats()["total"] - before
    assert served == len(completed) + len(failed)  # every request the server saw is reported
    assert sum(r.attempts for r in replies) == served


def test_missing_api_key_fails_before_any_call_naming_the_variable() -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        dx.LM("openai/gpt-4o-mini")
    with pytest.raises(MissingAPIKeyError, match="GROQ_API_KEY"):
        dx.LM("groq/llama-3.1-8b-instant")
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        dx.LM("anthropic/claude-sonnet-4-5")


def test_key_from_environment_is_used_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-env-0123456789")
    lm = dx.LM("openai/gpt-4o-mini")
    assert "sk-planted" not in repr(lm) and "'***'" in repr(lm)


def test_model_without_provider_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="provider/name"):
        dx.LM("gpt-4o-mini")


def test_sim_provider_without_simulator_says_how_to_start_it() -> None:
    with pytest.raises(ConfigurationError, match=r"sim\.start"):
        dx.LM("sim/small")


SECRET = "sk-planted-secret-9f8e7d6c5b4a"


def test_secrets_never_reach_errors_events_or_logs(
        sim_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        collector: Collector) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    ok = dx.LM("openai/small", base_url=sim_url, price_in=1, price_out=1)
    bad = dx.LM("openai/small", base_url=sim_url, api_key=SECRET, price_in=1, price_out=1,
                max_retries=1, extra_headers={"X-Sim-Fault": "500",
                                              "X-Custom-Auth": SECRET + "-header"})
    ok(PROMPT)
    with pytest.raises(LMServerError) as info:
        bad(PROMPT)
    texts = [repr(ok), repr(bad), str(info.value), repr(info.value), caplog.text]
    texts += [repr(e.record) for e in collector.flush()]
    assert all(SECRET not in t for t in texts)


def test_prices_come_from_litellm_map_without_importing_litellm() -> None:
    code = (
        "import sys, dspex_lab as dx\n"
        "from dspex_lab.lm import lookup_price\n"
        "p = lookup_price('openai', 'gpt-4o-mini')\n"
        "print(p.input_per_token, p.output_per_token, 'litellm' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    entry = price_map()["gpt-4o-mini"]
    assert float(out[0]) == entry["input_cost_per_token"]
    assert float(out[1]) == entry["output_cost_per_token"]
    assert out[2] == "False"


def test_unknown_price_costs_none_and_warns_once(sim_url: str) -> None:
    lm = dx.LM("openai/small-unknown-price-model", base_url=sim_url, api_key="k",
               extra_headers={})
    lookup_price.cache_clear()
    with pytest.warns(UnknownPriceWarning, match="small-unknown-price-model"):
        assert lm.price is None
    # a second look-up does not warn again
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lm.price is None


def test_explicit_prices_are_per_million_tokens(sim_url: str) -> None:
    lm = dx.LM("openai/small", base_url=sim_url, api_key="k", price_in=2.0, price_out=8.0)
    reply = lm(PROMPT)
    assert reply.cost == pytest.approx(reply.usage.prompt_tokens * 2e-6
                                       + reply.usage.completion_tokens * 8e-6)


def test_slow_or_failing_subscribers_never_slow_or_break_calls(sim_url: str) -> None:
    lm = dx.LM("sim/small")

    def slow(_: events.Event) -> None:
        time.sleep(0.05)

    def broken(_: events.Event) -> None:
        raise RuntimeError("subscriber bug")

    subs = [events.subscribe(slow, "lm.*"), events.subscribe(broken, "lm.*")]
    try:
        async def many() -> list[dx.LMResponse]:
            return await asyncio.gather(*(lm.acall(f"q{i}") for i in range(100)))

        started = time.perf_counter()
        replies = dx.lm.run_sync(many())
        elapsed = time.perf_counter() - started
    finally:
        for sub in subs:
            sub.close(timeout=0.1)
    assert len(replies) == 100
    # 200 events x 50 ms would take 10 s if the slow subscriber were on the call path
    assert elapsed < 3.0
    assert subs[1].errors >= 1


def test_lazy_imports() -> None:
    code = ("import sys, time\n"
            "t = time.perf_counter()\n"
            "import dspex_lab as dx\n"
            "dx.Signature, dx.LM\n"
            "heavy = [m for m in ('litellm', 'pandas', 'optuna', 'altair', 'panel') "
            "if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


@pytest.mark.slow
def test_litellm_transport_for_other_providers(sim_url: str) -> None:
    """A provider we do not speak natively goes through litellm, same retries and records."""
    lm = dx.LM("hosted_vllm/small", base_url=sim_url, price_in=1, price_out=1)
    assert lm.uses_litellm
    reply = lm(PROMPT)
    assert reply.text and reply.usage.prompt_tokens > 0
    failing = dx.LM("hosted_vllm/nonexistent", base_url=sim_url, price_in=1, price_out=1)
    with pytest.raises(LMError):
        failing(PROMPT)


def test_secret_values_name_the_key_and_header_values_and_repr_hides_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lm = dx.LM("openai/small", base_url="http://127.0.0.1:9/v1", api_key="sk-explicit-123456",
               extra_headers={"X-Gateway-Token": "gw-secret-987654", "X-Trace": ""})
    assert lm.secret_values() == ["sk-explicit-123456", "gw-secret-987654"]
    assert "sk-explicit" not in repr(lm) and "gw-secret" not in repr(lm)
    # a key found in the environment is sent too, so it is named as well
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-424242")
    assert dx.LM("openai/gpt-4o-mini").secret_values() == ["sk-from-env-424242"]
