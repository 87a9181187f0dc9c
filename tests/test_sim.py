"""The simulator over real HTTP: shape, reading each format, quality, faults, expectations.

Prompts are written by hand here, straight from docs/internals/prompt-protocol.md
(:func:`render`), so these tests check the simulator against the protocol page
rather than against the adapters; the expected-metrics tests then use the real
adapters, the way programs do.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from dspex_lab import sim
from dspex_lab.datasets import Item, find_item, load
from dspex_lab.errors import ConfigurationError
from dspex_lab.lm._builtin_models import BUILTIN_MODELS
from dspex_lab.sim import _quality as quality
from dspex_lab.sim._models import LATENCY_MS, MODELS
from dspex_lab.sim._reader import read_request
from dspex_lab.sim._tokens import count_tokens, prompt_tokens

# --------------------------------------------------------------------------- helpers

Fields = Sequence[tuple[str, str]]
MATH_IN: Fields = (("question", "str"),)
MATH_OUT: Fields = (("answer", "int"),)
COT_OUT: Fields = (("reasoning", "str"), ("answer", "int"))
POT_OUT: Fields = (("reasoning", "str"), ("code", "str"))
JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _value(v: Any) -> str:
    return v if isinstance(v, str) else orjson.dumps(v).decode()


def _json_type(t: str) -> str:
    if t.startswith("list["):
        return "array"
    return "object" if t.startswith("dict[") else JSON_TYPES.get(t, "string")


def _block(fmt: str, values: Mapping[str, Any], *, reply: bool) -> str:
    if fmt == "json":
        return orjson.dumps(dict(values)).decode()
    if fmt == "markdown":
        return "\n\n".join(f"## {k}\n{_value(v)}" for k, v in values.items())
    if reply:
        return "".join(f"[[ ## {k} ## ]]\n{_value(v)}\n\n" for k, v in values.items()) + \
            "[[ ## completed ## ]]"
    return "\n\n".join(f"[[ ## {k} ## ]]\n{_value(v)}" for k, v in values.items())


def render(fmt: str, inputs: Mapping[str, Any], *, in_fields: Fields = MATH_IN,
           out_fields: Fields = MATH_OUT, instructions: str = "Answer the question.",
           demos: Sequence[Mapping[str, Any]] = (),
           descriptions: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """A messages list written by hand from the protocol page."""
    desc = dict(descriptions or {})
    lines = ["Your input fields are:"]
    lines += [f"{i}. `{n}` ({t})" + (f": {desc[n]}" if n in desc else "")
              for i, (n, t) in enumerate(in_fields, 1)]
    lines.append("Your output fields are:")
    lines += [f"{i}. `{n}` ({t})" + (f": {desc[n]}" if n in desc else "")
              for i, (n, t) in enumerate(out_fields, 1)]
    every = [*in_fields, *out_fields]
    if fmt == "chat":
        blocks = "\n\n".join(f"[[ ## {n} ## ]]\n{{{n}}}" for n, _ in every)
        middle = ("Every exchange uses this structure, with each value filled in:\n\n"
                  f"{blocks}\n\n[[ ## completed ## ]]")
        reminder = "\n\nReply with the fields " + ", then ".join(
            f"`[[ ## {n} ## ]]`" for n, _ in out_fields) + ", and end with `[[ ## completed ## ]]`."
    elif fmt == "json":
        keys = ", ".join(f'"{n}" ({_json_type(t)})' for n, t in out_fields)
        middle = f"Reply with a single JSON object and nothing else. Its keys are: {keys}."
        reminder = ""
    else:
        blocks = "\n\n".join(f"## {n}\n{{{n}}}" for n, _ in every)
        middle = f"Every exchange uses Markdown, one level-2 heading per field:\n\n{blocks}"
        reminder = "\n\nReply with the headings " + ", ".join(
            f"## {n}" for n, _ in out_fields) + " in this order."
    system = "\n".join(lines) + f"\n\n{middle}\n\nYour task: {instructions}"
    messages = [{"role": "system", "content": system}]
    in_names = [n for n, _ in in_fields]
    out_names = [n for n, _ in out_fields]
    for demo in demos:
        messages.append({"role": "user", "content": _block(
            fmt, {n: demo[n] for n in in_names if n in demo}, reply=False)})
        messages.append({"role": "assistant", "content": _block(
            fmt, {n: demo[n] for n in out_names if n in demo}, reply=True)})
    messages.append({"role": "user", "content": _block(fmt, inputs, reply=False) + reminder})
    return messages


def parse_reply(fmt: str, text: str, names: Sequence[str]) -> dict[str, str] | None:
    """Field texts from a reply (None when a field is missing), written from the protocol."""
    if fmt == "json":
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or not all(n in obj for n in names):
            return None
        return {n: obj[n] if isinstance(obj[n], str) else _value(obj[n]) for n in names}
    pattern = r"^\[\[ ## (\w+) ## \]\]$" if fmt == "chat" else r"^## (\w+)$"
    parts = re.split(pattern, text, flags=re.M)
    found = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if not all(n in found for n in names):
        return None
    return {n: found[n] for n in names}


def post(url: str, body: Mapping[str, Any] | bytes, headers: Mapping[str, str] | None = None,
         timeout: float = 10.0) -> tuple[int, Mapping[str, str], bytes]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    req = urllib.request.Request(url + "/chat/completions", data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def ask(url: str, model: str, messages: list[dict[str, str]], **params: Any) -> dict[str, Any]:
    status, _, raw = post(url, {"model": model, "messages": messages, **params})
    assert status == 200, raw
    reply: dict[str, Any] = orjson.loads(raw)
    return reply


def content(reply: Mapping[str, Any]) -> str:
    text: str = reply["choices"][0]["message"]["content"]
    return text


def run_code(code: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(code, {})
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, out.getvalue().strip()


MATH = load("sim-math")
LOOKUP = load("sim-lookup")


def accuracy(url: str, model: str, fmt: str = "chat", *, outputs: Fields = MATH_OUT,
             rows: Sequence[Mapping[str, Any]] = MATH.val, **kw: Any) -> float:
    """Share of rows answered correctly (a broken reply counts as wrong)."""
    params = {k: kw.pop(k) for k in ("temperature", "seed") if k in kw}
    correct = 0
    for row in rows:
        reply = ask(url, model, render(fmt, {"question": row["question"]}, out_fields=outputs,
                                       **kw), **params)
        fields = parse_reply(fmt, content(reply), ["answer"])
        correct += fields is not None and fields["answer"] == str(row["answer"])
    return correct / len(rows)


@pytest.fixture(scope="module")
def server() -> Iterator[sim.SimServer]:
    with sim.start(speed=0.0, seed=0) as s:
        yield s


@pytest.fixture()
def url(server: sim.SimServer) -> str:
    return server.base_url


# --------------------------------------------------------------------------- shape


def test_response_has_the_openai_shape_and_the_latency_header(url: str) -> None:
    row = MATH.val[0]
    messages = render("chat", {"question": row["question"]})
    status, headers, raw = post(url, {"model": "small", "messages": messages})
    assert status == 200
    body = orjson.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "small"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == prompt_tokens(m["content"] for m in messages)
    assert usage["completion_tokens"] == count_tokens(choice["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    base, per_prompt, per_completion = LATENCY_MS["small"]
    latency = base + per_prompt * usage["prompt_tokens"] + per_completion * \
        usage["completion_tokens"]
    assert float(headers[sim.LATENCY_HEADER]) == pytest.approx(latency, abs=1e-3)


def test_models_health_and_sim_prefix(url: str) -> None:
    with urllib.request.urlopen(url + "/models") as resp:
        ids = [m["id"] for m in orjson.loads(resp.read())["data"]]
    assert ids == ["tiny", "small", "medium", "large"]
    with urllib.request.urlopen(url.removesuffix("/v1") + "/health") as resp:
        assert orjson.loads(resp.read()) == {"status": "ok"}
    reply = ask(url, "sim/large", render("chat", {"question": "hello?"}))
    assert reply["model"] == "large"


def test_public_api_is_deliberate() -> None:
    public = {n for n in dir(sim) if not n.startswith("_")} - {"annotations"}
    assert set(sim.__all__) == public
    assert public == {"FAULT_HEADER", "LATENCY_HEADER", "ExpectedMetrics", "Faults", "SimServer",
                      "expected_metrics", "serve_forever", "start"}


def test_prices_come_from_the_builtin_catalog() -> None:
    for name, model in MODELS.items():
        catalog = BUILTIN_MODELS[f"sim/{name}"]
        assert model.input_cost_per_token == catalog.input_cost_per_token
        assert model.output_cost_per_token == catalog.output_cost_per_token
        assert model.supports_json_mode == catalog.supports_json_mode
    bases = [LATENCY_MS[n][0] for n in ("tiny", "small", "medium", "large")]
    assert bases == sorted(bases) and bases[-1] == 600.0


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400),
    ({"model": "small"}, 400),
    ({"model": "small", "messages": []}, 400),
    ({"model": "small", "messages": [{"role": "user"}]}, 400),
    ({"model": "small", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}, 400),
    ({"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400),
    ({"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]}, 404),
])
def test_bad_requests_get_openai_style_errors(url: str, body: Any, status: int) -> None:
    got, _, raw = post(url, body)
    assert got == status
    error = orjson.loads(raw)["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    if status == 404:
        assert error["code"] == "model_not_found"


def test_json_mode_is_refused_by_models_without_it(url: str) -> None:
    messages = render("json", {"question": MATH.val[0]["question"]})
    fmt = {"type": "json_object"}
    status, _, raw = post(url, {"model": "small", "messages": messages, "response_format": fmt})
    assert status == 400
    assert orjson.loads(raw)["error"]["code"] == "unsupported_parameter"
    reply = ask(url, "medium", messages, response_format=fmt)
    assert isinstance(orjson.loads(content(reply)), dict)


# --------------------------------------------------------------------------- reading


def test_reader_extracts_every_feature_from_a_hand_written_prompt() -> None:
    demos = MATH.demos(2)
    messages = render("markdown", {"question": MATH.val[3]["question"]}, out_fields=COT_OUT,
                      instructions="Think carefully.\nThen answer.", demos=demos,
                      descriptions={"reasoning": "think step by step before answering"})
    body = {"model": "sim/medium", "messages": messages, "temperature": 0.25, "max_tokens": 99,
            "seed": 7}
    prompt = read_request(orjson.dumps(body))
    assert prompt.model.name == "medium"
    assert prompt.format == "markdown"
    assert [f.name for f in prompt.frame.inputs] == ["question"]
    assert [(f.name, f.type) for f in prompt.frame.outputs] == list(COT_OUT)
    assert prompt.frame.outputs[0].description == "think step by step before answering"
    assert prompt.frame.instructions == "Think carefully.\nThen answer."
    assert prompt.question == MATH.val[3]["question"]
    assert (prompt.n_demos, prompt.module, prompt.attempt) == (2, "cot", 1)
    assert (prompt.temperature, prompt.max_tokens, prompt.seed) == (0.25, 99, 7)
    default = read_request(orjson.dumps({"model": "tiny", "messages": messages[-1:]}))
    assert default.temperature == 1.0 and default.format is None


@pytest.mark.parametrize("fmt", ["chat", "json", "markdown"])
def test_each_format_is_read_and_answered_in_kind(url: str, fmt: str) -> None:
    answered = 0
    for row in MATH.val[:20]:
        messages = render(fmt, {"question": row["question"]}, out_fields=COT_OUT)
        reply = ask(url, "large", messages, temperature=0.0)
        fields = parse_reply(fmt, content(reply), ["reasoning", "answer"])
        if fields is None:
            continue  # a rare format error
        answered += 1
        assert fields["reasoning"].endswith(f"So the answer is {fields['answer']}.")
        assert re.fullmatch(r"\d+", fields["answer"])
    assert answered >= 18


def test_unknown_questions_get_typed_values_for_any_signature(url: str) -> None:
    out: Fields = (("count", "int"), ("tags", "list[str]"), ("ok", "bool"), ("score", "float"),
                   ("label", "Literal['yes', 'no']"))
    messages = render("json", {"text": "What is the airspeed of a swallow?"},
                      in_fields=(("text", "str"),), out_fields=out)
    reply = ask(url, "large", messages, temperature=0.0)
    obj = orjson.loads(content(reply))
    assert isinstance(obj["count"], int) and isinstance(obj["ok"], bool)
    assert isinstance(obj["score"], float)
    assert isinstance(obj["tags"], list) and all(isinstance(t, str) for t in obj["tags"])
    assert obj["label"] in ("yes", "no")
    plain = ask(url, "small", [{"role": "user", "content": "Say hi"}])
    assert content(plain)


def test_identical_requests_get_identical_replies(url: str) -> None:
    messages = render("chat", {"question": MATH.val[5]["question"]}, out_fields=COT_OUT)
    first = [content(ask(url, "small", messages, temperature=0.7)) for _ in range(3)]
    assert len(set(first)) == 1
    by_seed = {content(ask(url, "small", messages, temperature=0.7, seed=s)) for s in range(12)}
    assert len(by_seed) > 1


# --------------------------------------------------------------------------- quality


def test_quality_function_properties() -> None:
    def p(model: str = "small", task: str = "math", difficulty: int = 2, module: str = "predict",
          adapter: str = "chat", n_demos: int = 0, instructions: str = "",
          temperature: float = 0.7, is_retry: bool = False) -> float:
        return quality.p_correct(model, task, difficulty, module, adapter, n_demos,
                                 instructions, temperature, is_retry)

    tiers = [p(model=m) for m in ("tiny", "small", "medium", "large")]
    assert tiers == sorted(tiers)
    assert p(module="pot") > p(module="cot") > p(module="predict")
    assert p(task="lookup", module="cot") - p(task="lookup") < p(module="cot") - p()
    gains = [p(n_demos=k + 1) - p(n_demos=k) for k in range(8)]
    assert all(g > 0 for g in gains) and gains == sorted(gains, reverse=True)
    assert p(temperature=0.0) > p(temperature=1.0) > p(temperature=2.0)
    assert p(adapter="json", model="tiny") < p(model="tiny")
    assert p(instructions="Think step by step.") > p() > p(instructions="Just guess.")
    assert p(difficulty=1) > p(difficulty=4)
    assert p(is_retry=True) > p()
    assert p(model="large", module="pot", difficulty=1, n_demos=50, temperature=0) == \
        quality.P_MAX
    assert p(model="tiny", difficulty=4, temperature=2, adapter="json", instructions="guess") == \
        quality.P_MIN
    assert quality.p_format_error("small", "json", False) > quality.p_format_error(
        "small", "chat", False)
    assert quality.p_format_error("large", "json", True) == quality.JSON_MODE_FORMAT_ERROR


def test_every_quality_constant_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "simulator.md").read_text()
    constants = [name for name in quality.__all__ if name.isupper()]
    assert constants and all(f"`{name}`" in doc for name in constants)
    assert "`LATENCY_MS`" in doc and "`MESSAGE_OVERHEAD`" in doc


def test_reasoning_demos_and_temperature_move_accuracy_as_documented(url: str) -> None:
    small_predict = accuracy(url, "small", temperature=0.7)
    large_cot = accuracy(url, "large", outputs=COT_OUT, temperature=0.7)
    small_cot = accuracy(url, "small", outputs=COT_OUT, temperature=0.7)
    assert large_cot > small_cot > small_predict + 0.1
    cold = accuracy(url, "small", outputs=COT_OUT, temperature=0.0)
    hot = accuracy(url, "small", outputs=COT_OUT, temperature=1.8)
    assert cold > small_cot > hot
    with_demos = accuracy(url, "small", outputs=COT_OUT, temperature=0.7, demos=MATH.demos(8))
    assert with_demos > small_cot
    # On lookups reasoning helps little: the gap is much smaller than on math.
    lookup_gap = accuracy(url, "small", outputs=(("reasoning", "str"), ("answer", "str")),
                          rows=LOOKUP.val, temperature=0.7) - accuracy(
        url, "small", outputs=(("answer", "str"),), rows=LOOKUP.val, temperature=0.7)
    assert lookup_gap < (small_cot - small_predict) / 2


def test_weak_models_break_json_more_often_than_chat(url: str) -> None:
    def broken(fmt: str) -> int:
        count = 0
        for row in MATH.val:
            reply = ask(url, "tiny", render(fmt, {"question": row["question"]}))
            count += parse_reply(fmt, content(reply), ["answer"]) is None
        return count

    json_broken, chat_broken = broken("json"), broken("chat")
    n = len(MATH.val)
    # tiny: 30% for JSON without JSON mode, 8% for chat markers (binomial sd ~3.2% and ~1.9%).
    assert abs(json_broken / n - quality.FORMAT_ERROR["json"][0]) < 0.1
    assert abs(chat_broken / n - quality.FORMAT_ERROR["chat"][0]) < 0.06
    assert json_broken > chat_broken


def test_max_tokens_truncates_and_reports_length(url: str) -> None:
    messages = render("chat", {"question": MATH.val[9]["question"]}, out_fields=COT_OUT)
    full = ask(url, "large", messages, temperature=0.0)
    assert full["usage"]["completion_tokens"] > 12
    cut = ask(url, "large", messages, temperature=0.0, max_tokens=12)
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 12
    assert content(full).startswith(content(cut))
    roomy = ask(url, "large", messages, temperature=0.0, max_tokens=10_000)
    assert roomy["choices"][0]["finish_reason"] == "stop"


def test_program_of_thought_code_runs_raises_and_retries(url: str) -> None:
    outcomes = {"correct": 0, "wrong": 0, "raised": 0}
    retried_ok = 0
    for row in MATH.val[:80]:
        messages = render("chat", {"question": row["question"]}, out_fields=POT_OUT)
        fields = parse_reply("chat", content(ask(url, "small", messages, temperature=0.7)),
                             ["reasoning", "code"])
        if fields is None:
            continue
        assert fields["code"].startswith("# attempt 1\n")
        ran, printed = run_code(fields["code"])
        if not ran:
            outcomes["raised"] += 1
            retry = render("chat", {"question": row["question"], "previous_code": fields["code"],
                                    "error": printed},
                           in_fields=(*MATH_IN, ("previous_code", "str"), ("error", "str")),
                           out_fields=POT_OUT)
            again = parse_reply("chat", content(ask(url, "small", retry, temperature=0.7)),
                                ["code"])
            if again is not None:
                assert again["code"].startswith("# attempt 2\n")
                retried_ok += run_code(again["code"]) == (True, str(row["answer"]))
        elif printed == str(row["answer"]):
            outcomes["correct"] += 1
        else:
            outcomes["wrong"] += 1
            assert re.fullmatch(r"-?\d+", printed)
    assert all(n > 0 for n in outcomes.values()), outcomes
    assert retried_ok > 0


def test_retry_prompt_attempt_number_comes_from_previous_code() -> None:
    base = {"question": MATH.val[0]["question"], "error": "NameError: x"}
    in_fields = (*MATH_IN, ("previous_code", "str"), ("error", "str"))
    for previous, attempt in (("print(x)", 2), ("# attempt 2\nprint(x)", 3)):
        messages = render("chat", {**base, "previous_code": previous}, in_fields=in_fields,
                          out_fields=POT_OUT)
        prompt = read_request(orjson.dumps({"model": "small", "messages": messages}))
        assert (prompt.module, prompt.attempt) == ("pot", attempt)


# --------------------------------------------------------------------------- faults


def _status_counts(url: str, n: int) -> dict[int | str, int]:
    """Responses by status; a 200 whose body is not JSON counts as "truncated"."""
    counts: dict[int | str, int] = {}
    messages = render("chat", {"question": MATH.val[0]["question"]})
    for _ in range(n):
        status, headers, raw = post(url, {"model": "tiny", "messages": messages})
        kind: int | str = status
        if status == 200:
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                kind = "truncated"
        counts[kind] = counts.get(kind, 0) + 1
        if status == 429:
            assert float(headers["Retry-After"]) == pytest.approx(0.05)
    return counts


def test_fault_header_forces_each_kind_and_stats_count_them() -> None:
    with sim.start(speed=0.0, faults=sim.Faults(hang_s=0.6)) as server:
        url = server.base_url
        messages = render("chat", {"question": MATH.val[0]["question"]})
        body = {"model": "small", "messages": messages}
        status, headers, raw = post(url, body, {"X-Sim-Fault": "429"})
        assert status == 429 and headers["Retry-After"] == "0.05"
        assert orjson.loads(raw)["error"]["type"] == "rate_limit_error"
        status, _, raw = post(url, body, {"X-Sim-Fault": "500"})
        assert status == 500 and orjson.loads(raw)["error"]["type"] == "server_error"
        status, headers, raw = post(url, body, {"X-Sim-Fault": "truncate"})
        assert status == 200 and int(headers["Content-Length"]) == len(raw)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        started = time.perf_counter()
        with pytest.raises((TimeoutError, urllib.error.URLError, socket.timeout)):
            post(url, body, {"X-Sim-Fault": "hang"}, timeout=0.2)
        assert time.perf_counter() - started < 0.5
        assert post(url, body, {"X-Sim-Fault": "bogus"})[0] == 400
        assert post(url, body)[0] == 200
        stats = server.stats()
        assert {k: stats[k] for k in ("total", "ok", "429", "500", "hang", "truncated", "error")} \
            == {"total": 6, "ok": 1, "429": 1, "500": 1, "hang": 1, "truncated": 1, "error": 1}
        assert stats["by_model"]["small"]["total"] == 5
        server.reset_stats()
        assert server.stats()["total"] == 0


def test_fault_rates_are_followed_and_reproducible() -> None:
    faults = sim.Faults(rate_429=0.2, rate_500=0.1, rate_truncated=0.1, rate_hang=0.05,
                        hang_s=0.01)
    runs = []
    for _ in range(2):
        with sim.start(speed=0.0, seed=3, faults=faults) as server:
            counts = _status_counts(server.base_url, 400)
            stats = server.stats()
            runs.append(counts)
            assert stats["total"] == 400
            assert (stats["429"], stats["500"], stats["truncated"]) == (
                counts[429], counts[500], counts["truncated"])
            # a hang that ends before the client's timeout is answered normally
            assert counts[200] == stats["ok"] + stats["hang"]
    assert runs[0] == runs[1]
    # binomial sd for 400 requests: 20% -> 8, 10% -> 6, 5% -> 4.4; allow ~3.5 sd
    assert abs(runs[0][429] - 80) < 28
    assert abs(runs[0][500] - 40) < 21 and abs(runs[0]["truncated"] - 40) < 21
    assert abs(stats["hang"] - 20) < 16


def test_set_faults_changes_rates_at_runtime(server: sim.SimServer) -> None:
    try:
        server.set_faults(rate_500=1.0)
        assert _status_counts(server.base_url, 5) == {500: 5}
    finally:
        server.set_faults(sim.Faults())
    assert _status_counts(server.base_url, 3) == {200: 3}
    with pytest.raises(ValueError, match="sum to at most 1"):
        sim.Faults(rate_429=0.7, rate_500=0.7)


# --------------------------------------------------------------------------- serving modes


def test_process_server_serves_and_takes_controls() -> None:
    with sim.start(speed=0.0, process=True) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        reply = ask(server.base_url, "medium", render("chat", {"question": "2 + 2?"}))
        assert content(reply)
        server.set_faults(rate_429=1.0)
        assert _status_counts(server.base_url, 2) == {429: 2}
        stats = server.stats()
        assert (stats["total"], stats["ok"], stats["429"]) == (3, 1, 2)
        server.reset_stats()
        assert server.stats()["total"] == 0
    with pytest.raises(OSError):
        post(server.base_url, {"model": "small", "messages": []}, timeout=2)


def test_start_sets_and_clears_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSPEX_SIM_URL", raising=False)
    with sim.start(speed=0.0) as server:
        assert os.environ["DSPEX_SIM_URL"] == server.base_url
    assert "DSPEX_SIM_URL" not in os.environ
    monkeypatch.setenv("DSPEX_SIM_URL", "http://elsewhere/v1")
    with sim.start(speed=0.0):
        assert os.environ["DSPEX_SIM_URL"] == "http://elsewhere/v1"
    assert os.environ["DSPEX_SIM_URL"] == "http://elsewhere/v1"


def test_speed_scales_the_real_wait() -> None:
    messages = render("chat", {"question": MATH.val[0]["question"]})
    with sim.start(speed=0.5) as server:
        started = time.perf_counter()
        status, headers, _ = post(server.base_url, {"model": "tiny", "messages": messages})
        elapsed = time.perf_counter() - started
    latency = float(headers[sim.LATENCY_HEADER]) / 1000
    assert status == 200 and latency > 0.08
    assert 0.5 * latency - 0.005 <= elapsed < 0.5 * latency + 0.25


def test_fixed_latency_mode_gives_minimal_valid_replies() -> None:
    with sim.start(speed=1.0, fixed_latency_ms=50) as server:
        for fmt in ("chat", "json", "markdown"):
            messages = render(fmt, {"question": MATH.val[1]["question"]}, out_fields=COT_OUT)
            started = time.perf_counter()
            status, headers, raw = post(server.base_url, {"model": "large",
                                                          "messages": messages})
            elapsed = time.perf_counter() - started
            assert status == 200 and float(headers[sim.LATENCY_HEADER]) == 50.0
            assert 0.045 < elapsed < 0.5
            fields = parse_reply(fmt, content(orjson.loads(raw)), ["reasoning", "answer"])
            assert fields is not None and re.fullmatch(r"\d+", fields["answer"])


def test_throughput_sanity_at_speed_zero(url: str) -> None:
    bodies = [orjson.dumps({"model": "small", "temperature": 0.7, "messages": render(
        "chat", {"question": row["question"]}, demos=MATH.demos(3))}) for row in MATH.train]

    async def run(n: int, concurrency: int) -> float:
        sem = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(i: int) -> None:
                async with sem, session.post(url + "/chat/completions",
                                             data=bodies[i % len(bodies)],
                                             headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 200
                    await r.read()

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return n / (time.perf_counter() - started)

    rate = asyncio.run(run(2000, 64))
    assert rate >= 500, f"{rate:.0f} requests/s"


# --------------------------------------------------------------------------- expected metrics


class _Client:
    """A minimal program runner over HTTP that behaves as dspex_lab's modules do:
    the adapters render and parse, one fallback after a parse error, and
    program-of-thought code retried up to twice with the error shown."""

    def __init__(self, url: str, config: Mapping[str, Any], dataset: str) -> None:
        from dspex_lab.programs.adapters import fallback_adapter, get_adapter
        from dspex_lab.programs.signature import Signature

        self.url = url
        self.config = config
        self.data = load(dataset)
        self.model = str(config["model"]).removeprefix("sim/")
        self.adapters = [get_adapter(config["adapter"]),
                         get_adapter(fallback_adapter(config["adapter"]))]
        self.sig = Signature(self.data.signature)
        self.demos = self.data.demos(config.get("demos", 0))
        self.calls = 0
        self.cost = 0.0

    def _step(self, sig: Any, inputs: Mapping[str, Any], seed: int) -> dict[str, Any] | None:
        from dspex_lab.errors import ParseError

        for adapter in self.adapters:
            params = adapter.request_params(
                supports_json_mode=MODELS[self.model].supports_json_mode)
            messages = adapter.format(sig, inputs, instructions=self.config.get("instructions"),
                                      demos=self.demos)
            reply = ask(self.url, self.model, messages, temperature=self.config["temperature"],
                        seed=seed, **params)
            usage = reply["usage"]
            self.calls += 1
            self.cost += MODELS[self.model].cost(usage["prompt_tokens"],
                                                 usage["completion_tokens"])
            try:
                parsed: dict[str, Any] = adapter.parse(sig, content(reply))
                return parsed
            except ParseError:
                continue
        return None

    def answer(self, row: Mapping[str, Any], seed: int) -> Any:
        from dspex_lab.programs.predictors import CODE_DESC, REASONING_DESC

        inputs = {"question": row["question"]}
        module = self.config["module"]
        if module != "pot":
            sig = self.sig if module == "predict" else self.sig.prepend_output(
                "reasoning", "str", REASONING_DESC)
            parsed = self._step(sig, inputs, seed)
            return None if parsed is None else parsed["answer"]
        step_inputs: dict[str, Any] = dict(inputs)
        for attempt in range(3):
            sig = type(self.sig)("question: str -> code: str",
                                 instructions=self.sig.instructions,
                                 descriptions={"code": CODE_DESC}).prepend_output(
                "reasoning", "str", REASONING_DESC)
            if attempt:
                sig = sig.append_input("previous_code", "str", "code that failed").append_input(
                    "error", "str", "what went wrong when it ran")
            parsed = self._step(sig, step_inputs, seed)
            if parsed is None:
                return None
            ran, printed = run_code(parsed["code"])
            if ran and re.fullmatch(r"[+-]?\d+", printed):
                return int(printed)
            step_inputs = {**inputs, "previous_code": parsed["code"], "error": printed}
        return None


@pytest.mark.slow
@pytest.mark.parametrize("config", [
    {"model": "sim/small", "adapter": "chat", "module": "predict", "temperature": 0.7},
    {"model": "sim/tiny", "adapter": "json", "module": "cot", "temperature": 1.0, "demos": 3},
    {"model": "sim/small", "adapter": "markdown", "module": "pot", "temperature": 0.5},
])
def test_expected_metrics_match_an_empirical_run(url: str, config: dict[str, Any]) -> None:
    expected = sim.expected_metrics(config, "sim-math", "val")
    client = _Client(url, config, "sim-math")
    seeds = range(3)
    correct = 0
    for seed in seeds:
        for row in MATH.val:
            correct += client.answer(row, seed) == row["answer"]
    n = len(MATH.val) * len(seeds)
    # The empirical accuracy is a mean of n independent Bernoulli draws whose mean is
    # the expected accuracy; its sd is at most sqrt(a(1-a)/n) (~1.6% here). Allow 4 sd.
    sd = math.sqrt(expected.accuracy * (1 - expected.accuracy) / n)
    assert abs(correct / n - expected.accuracy) < 4 * sd
    assert client.calls / n == pytest.approx(expected.calls_per_example, rel=0.08)
    assert client.cost / n == pytest.approx(expected.cost_per_example, rel=0.08)


def test_expected_metrics_order_configurations_as_documented() -> None:
    config = {"model": "sim/large", "adapter": "chat", "module": "predict", "temperature": 0.0}
    got = sim.expected_metrics(config, "sim-lookup", "val")
    assert got.n_examples == 200
    assert 0.8 < got.accuracy < 0.98
    assert got.calls_per_example == pytest.approx(1 + quality.FORMAT_ERROR["chat"][3])
    cheaper = sim.expected_metrics({**config, "model": "sim/tiny"}, "sim-lookup", "val")
    assert cheaper.cost_per_example < got.cost_per_example / 20
    assert cheaper.latency_s_per_example < got.latency_s_per_example
    cot = sim.expected_metrics({**config, "module": "cot"}, "sim-lookup", "val")
    assert cot.tokens_per_example > got.tokens_per_example
    with_demos = sim.expected_metrics({**config, "demos": 4}, "sim-lookup", "val")
    assert with_demos.tokens_per_example > got.tokens_per_example + 4 * 20


def test_expected_metrics_rejects_bad_configs() -> None:
    with pytest.raises(ConfigurationError, match="unknown config keys"):
        sim.expected_metrics({"model": "sim/small", "modle": "cot"})
    with pytest.raises(ConfigurationError, match="not a simulator model"):
        sim.expected_metrics({"model": "openai/gpt-4o"})
    with pytest.raises(ConfigurationError, match="module"):
        sim.expected_metrics({"model": "sim/small", "module": "react"})
    with pytest.raises(ConfigurationError, match="temperature"):
        sim.expected_metrics({"model": "sim/small", "temperature": 2.5})
    with pytest.raises(ConfigurationError, match="adapter"):
        sim.expected_metrics({"model": "sim/small", "adapter": "xml"})


def test_layering_library_never_imports_the_simulator() -> None:
    code = ("import sys, dspex_lab, dspex_lab.lm, dspex_lab.programs, dspex_lab.datasets; "
            "import dspex_lab.programs.adapters, dspex_lab.programs.predictors; "
            "print('dspex_lab.sim' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    lazy = subprocess.run(
        [sys.executable, "-c", "import sys, dspex_lab.sim; print(sorted(m for m in sys.modules "
         "if m.startswith('dspex_lab.programs')))"], capture_output=True, text=True, check=True)
    assert lazy.stdout.strip() == "[]"


def test_items_are_found_by_their_question() -> None:
    item = find_item(MATH.val[17]["question"])
    assert isinstance(item, Item) and item.id == "math-val-0017"
    assert find_item("  " + MATH.val[17]["question"] + "\n") == item
    assert find_item("not a question we know") is None
