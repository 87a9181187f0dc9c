"""The aiohttp application: the OpenAI-compatible routes and the ``/_sim`` control routes.

The chat handler is the hot path (>1,500 requests/s on two cores): it reads
the body once with orjson, reuses the cached system-message parse and builds
the response with orjson; access logging is off (see ``_server``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from dspex_lab.sim._complete import Completion, complete
from dspex_lab.sim._faults import FAULT_HEADER, Faults, pick_fault
from dspex_lab.sim._models import MODELS
from dspex_lab.sim._reader import Prompt, RequestError, read_request
from dspex_lab.sim._stats import Stats

__all__ = ["LATENCY_HEADER", "STATE", "SimState", "build_app"]

LATENCY_HEADER = "X-Dspex-Latency-Ms"
_JSON = "application/json"


@dataclass
class SimState:
    """Settings and counters shared by the handlers of one server."""

    seed: int = 0
    speed: float = 1.0
    faults: Faults = field(default_factory=Faults)
    fixed_latency_ms: float | None = None
    stats: Stats = field(default_factory=Stats)
    counter: itertools.count[int] = field(default_factory=itertools.count)


STATE = web.AppKey("dspex_sim_state", SimState)


def _error(status: int, message: str, error_type: str, code: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON,
                        headers=headers)


def _body(prompt: Prompt, done: Completion, counter: int) -> bytes:
    return orjson.dumps({
        "id": f"chatcmpl-sim-{counter}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": prompt.model.name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": done.text},
            "finish_reason": done.finish_reason,
        }],
        "usage": {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        },
    })


async def _chat_completions(request: web.Request) -> web.Response:
    state = request.app[STATE]
    counter = next(state.counter)
    try:
        prompt = read_request(await request.read())
        fault = pick_fault(state.faults, request.headers.get(FAULT_HEADER), state.seed, counter)
    except RequestError as exc:
        state.stats.record("-", "error")
        return _error(exc.status, exc.message, exc.error_type, exc.code)
    except ValueError as exc:
        state.stats.record("-", "error")
        return _error(400, str(exc), "invalid_request_error")
    model = prompt.model.name
    faults = state.faults
    if fault == "429":
        state.stats.record(model, "429")
        return _error(429, "Rate limit reached (simulated).", "rate_limit_error",
                      "rate_limit_exceeded", {"Retry-After": f"{faults.retry_after_s:g}"})
    if fault == "500":
        state.stats.record(model, "500")
        return _error(500, "The server had an error (simulated).", "server_error")
    if fault == "hang":
        state.stats.record(model, "hang")
        await asyncio.sleep(faults.hang_s)
    if fault != "hang":  # counted before any sleep, so a client that gives up is counted too
        state.stats.record(model, "truncated" if fault == "truncated" else "ok")
    done = complete(prompt, state.seed, state.fixed_latency_ms)
    delay = done.latency_ms * state.speed / 1000.0
    if delay > 0:
        await asyncio.sleep(delay)
    body = _body(prompt, done, counter)
    if fault == "truncated":
        body = body[: len(body) // 2]
    headers = {LATENCY_HEADER: f"{done.latency_ms:.3f}"}
    return web.Response(body=body, content_type=_JSON, headers=headers)


_MODELS_BODY = orjson.dumps({
    "object": "list",
    "data": [{"id": name, "object": "model", "created": 0, "owned_by": "dspex-sim"}
             for name in MODELS],
})


async def _models(request: web.Request) -> web.Response:
    return web.Response(body=_MODELS_BODY, content_type=_JSON)


async def _health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=_JSON)


async def _set_faults(request: web.Request) -> web.Response:
    try:
        data: Any = orjson.loads(await request.read())
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object of fault settings")
        request.app[STATE].faults = Faults.from_dict(data)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc), "invalid_request_error")
    return web.Response(body=orjson.dumps(request.app[STATE].faults.to_dict()),
                        content_type=_JSON)


async def _stats(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[STATE].stats.snapshot()),
                        content_type=_JSON)


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].stats.reset()
    return web.Response(body=b'{"reset":true}', content_type=_JSON)


def build_app(state: SimState) -> web.Application:
    """The application serving ``state``; ``/v1`` routes plus the ``/_sim`` controls."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_post("/_sim/faults", _set_faults)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_post("/_sim/reset", _reset)
    return app
