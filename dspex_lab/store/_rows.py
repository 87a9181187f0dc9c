"""Records to Arrow columns, in bulk, with secrets scrubbed.

The bus subscriber only appends each record to a list; this module turns a
whole batch of records into Arrow tables on the writer thread, column by
column: ``operator.attrgetter`` pulls every field of every record in C, one
``orjson.dumps`` per JSON value, and JSON text goes straight into an Arrow
buffer (``b"".join`` + offsets) with no per-row ``str``. Derived columns (row
id, ``run_id``/``trial_id`` from the tags, ``{"text": ...}``, uncached
cost/latency) are computed by DuckDB in the ``INSERT ... SELECT``. Records
are read by attribute, so the store never imports the record classes.

Secrets: nothing here reads the environment for data; the writer learns the
*values* of secret-looking environment variables only to blank them out.

1. Keys: in every mapping written as JSON (request params, program configs,
   tags, run/trial fields) a key naming a secret (``api_key``,
   ``authorization``, ``headers``, ``*_token``, ``password``, ...) is dropped
   with its value, at any depth. A batch's JSON is first searched as one
   buffer for hints of such keys; only then are its rows walked in Python.
2. Values: each text column (JSON included) of a batch is searched, as one
   buffer, for the current values of secret-looking environment variables
   (``*_API_KEY``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ...; 8+
   characters) and for ``Bearer <token>``; rows that contain one get it
   replaced by ``***``.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "LM_SELECT",
    "PARSE_FALLBACK_SELECT",
    "PROGRAM_SELECT",
    "is_secret_key",
    "lm_table",
    "parse_fallback_table",
    "program_table",
    "refresh_secrets",
    "scrub",
    "scrub_text",
    "to_json",
    "upsert_row",
]

REDACTED = "***"
_REDACTED_B = REDACTED.encode()

# -- secret keys --------------------------------------------------------------------------

_SECRET_KEYS = frozenset({
    "api_key", "apikey", "api_keys", "key_secret", "authorization", "auth", "headers",
    "extra_headers", "default_headers", "http_headers", "cookie", "cookies", "set_cookie",
    "password", "passwd", "secret", "client_secret", "credentials", "credential", "bearer",
    "access_token", "refresh_token", "id_token", "api_token", "auth_token", "session_token",
    "private_key", "x_api_key", "proxy_authorization", "aws_secret_access_key",
    "aws_session_token",
})
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_token", "_secret", "_password", "_credentials",
                    "_auth", "_headers")
# Lower-cased fragments, one of which appears in the JSON text of any mapping holding a
# key that is_secret_key() drops (orjson writes a key as "name":). JSON without any of
# them needs no walk.
_KEY_HINTS = (b'key":', b'keys":', b"auth", b"header", b'token":', b"secret", b"passw",
              b"cookie", b"credential", b"bearer")
_key_memo: dict[str, bool] = {}


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``API-Key``, ``openai_api_key``, ``headers``...)."""
    hit = _key_memo.get(key)
    if hit is None:
        norm = key.strip().lower().replace("-", "_").replace(" ", "_")
        hit = norm in _SECRET_KEYS or norm.endswith(_SECRET_SUFFIXES)
        if len(_key_memo) < 10_000:
            _key_memo[key] = hit
    return hit


def scrub(obj: Any) -> Any:
    """``obj`` with secret-named keys dropped from every mapping, at any depth."""
    if isinstance(obj, Mapping):
        return {k: scrub(v) for k, v in obj.items()
                if not (isinstance(k, str) and is_secret_key(k))}
    if isinstance(obj, list | tuple):
        return [scrub(v) for v in obj]
    return obj


# -- secret values ------------------------------------------------------------------------

_SECRET_ENV = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|_KEY$)",
                         re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]{4,}=*")
_BEARER_B = re.compile(rb"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]{4,}=*")
_secrets_str: tuple[str, ...] = ()
_secrets_bytes: tuple[bytes, ...] = ()


def refresh_secrets() -> None:
    """Re-read which environment values are secret (once per batch: ~50 µs)."""
    global _secrets_str, _secrets_bytes
    found = {v for k, v in os.environ.items() if len(v) >= 8 and _SECRET_ENV.search(k)}
    # longest first, so a secret containing another is blanked whole
    _secrets_str = tuple(sorted(found, key=len, reverse=True))
    _secrets_bytes = tuple(s.encode("utf-8", "replace") for s in _secrets_str)


def scrub_text(text: str) -> str:
    """``text`` with secret environment values and bearer tokens blanked."""
    for s in _secrets_str:
        if s in text:
            text = text.replace(s, REDACTED)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1" + REDACTED, text)
    return text


def _scrub_bytes(data: bytes) -> bytes:
    for s in _secrets_bytes:
        if s in data:
            data = data.replace(s, _REDACTED_B)
    if b"earer" in data or b"EARER" in data:
        data = _BEARER_B.sub(rb"\1" + _REDACTED_B, data)
    return data


def _needs_value_scrub(joined: bytes) -> bool:
    return (any(s in joined for s in _secrets_bytes)
            or b"earer" in joined or b"EARER" in joined)


# -- JSON -----------------------------------------------------------------------------------

def _default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        try:
            return to_dict()
        except Exception:
            pass
    return str(obj)


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_default)
    except TypeError:  # e.g. non-string keys
        return orjson.dumps(obj, default=_default,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def _dumps_all(objs: Sequence[Any]) -> list[bytes | None]:
    dumps = orjson.dumps
    try:
        return [None if o is None else dumps(o) for o in objs]
    except TypeError:  # something orjson cannot encode natively: value by value
        return [None if o is None else _dumps(o) for o in objs]


def to_json(obj: Any) -> str | None:
    """JSON text of ``obj`` with secret-named keys dropped and secret values blanked."""
    if obj is None:
        return None
    data = _dumps(obj)
    if any(h in data.lower() for h in _KEY_HINTS):
        data = _dumps(scrub(obj))
    return _scrub_bytes(data).decode()


# -- Arrow columns --------------------------------------------------------------------------

def _text_array(chunks: list[bytes | None], joined: bytes | None = None) -> pa.Array:
    """UTF-8 chunks (None = NULL) as an Arrow string array over one joined buffer
    (``joined``: ``b"".join`` of the non-NULL chunks, when the caller has it)."""
    import numpy as np
    import pyarrow as pa

    n = len(chunks)
    nulls = chunks.count(None)
    validity = None
    lengths = np.zeros(n + 1, dtype=np.int64)
    if nulls:
        validity = np.fromiter(map(bool, chunks), dtype=bool, count=n)
        present: list[bytes] = list(filter(None, chunks))  # JSON text is never empty
        lengths[1:][validity] = np.fromiter(map(len, present), dtype=np.int64,
                                            count=n - nulls)
    else:
        present = chunks  # type: ignore[assignment]
        lengths[1:] = np.fromiter(map(len, present), dtype=np.int64, count=n)
    offsets = np.cumsum(lengths, dtype=np.int64)
    data = b"".join(present) if joined is None else joined
    bitmap = None if validity is None else pa.py_buffer(np.packbits(validity, bitorder="little"))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data),
                                            bitmap, nulls)


def _json_array(objs: Sequence[Any], *, drop_secret_keys: bool) -> pa.Array:
    chunks = _dumps_all(objs)
    joined: bytes | None = b"".join(filter(None, chunks))
    if drop_secret_keys and joined is not None:
        lowered = joined.lower()
        if any(h in lowered for h in _KEY_HINTS):
            chunks = [c if c is None or not any(h in c.lower() for h in _KEY_HINTS)
                      else _dumps(scrub(o)) for c, o in zip(chunks, objs, strict=True)]
            joined = None
    if _needs_value_scrub(joined if joined is not None else b"".join(filter(None, chunks))):
        chunks = [None if c is None else _scrub_bytes(c) for c in chunks]
        joined = None
    return _text_array(chunks, joined)


def _str_array(values: Sequence[Any], *, scrub_values: bool = False) -> pa.Array:
    import pyarrow as pa

    if scrub_values:
        try:
            joined = "\x00".join(filter(None, values))
        except TypeError:
            joined = "\x00".join(v for v in values if isinstance(v, str))
        if any(s in joined for s in _secrets_str) or "earer" in joined or "EARER" in joined:
            values = [scrub_text(v) if isinstance(v, str) else v for v in values]
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _num_array(values: Sequence[Any], typ: Callable[[], pa.DataType]) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, typ())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([_coerce_number(v) for v in values], typ())


def _coerce_number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _ts_array(values: Sequence[Any]) -> pa.Array:
    """Epoch seconds as TIMESTAMP (microseconds, naive UTC)."""
    import pyarrow as pa

    try:
        micros = [None if v is None else round(v * 1_000_000) for v in values]
    except (TypeError, ValueError, OverflowError):  # a bad value: NULL for it alone
        micros = [_micros(v) for v in values]
    return pa.array(micros, pa.timestamp("us"))


def _micros(value: Any) -> int | None:
    try:
        return None if value is None else round(float(value) * 1_000_000)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(values: Sequence[Any]) -> pa.Array:
    import pyarrow as pa

    return _num_array(values, pa.float64)


def _int(values: Sequence[Any]) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([_coerce_int(v) for v in values], pa.int64())


def _coerce_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _bool(values: Sequence[Any]) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else bool(v) for v in values], pa.bool_())


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _columns(records: Sequence[Any], fields: tuple[str, ...]) -> dict[str, list[Any]]:
    # one list per field: no per-row tuple, so no garbage-collector churn on big batches
    return {name: list(map(operator.attrgetter(name), records)) for name in fields}


# -- LM attempts ------------------------------------------------------------------------------

_LM_FIELDS = ("call_id", "trace_id", "parent_id", "model", "provider", "messages", "params",
              "attempt", "started_at", "ended_at", "text", "prompt_tokens",
              "completion_tokens", "cost", "latency_s", "wall_s", "cache_hit", "uncached_cost",
              "uncached_latency_s", "finish_reason", "error_kind", "error_message",
              "will_retry", "tags")


def lm_table(records: Sequence[Any]) -> pa.Table:
    """``LMCallRecord`` objects (one per attempt) as the Arrow input of :data:`LM_SELECT`."""
    c = _columns(records, _LM_FIELDS)
    return _table({
        "call_id": _str_array(c["call_id"]),
        "trace_id": _str_array(c["trace_id"]),
        "parent_id": _str_array(c["parent_id"]),
        "model": _str_array(c["model"]),
        "provider": _str_array(c["provider"]),
        "inputs": _json_array(c["messages"], drop_secret_keys=False),
        "text": _str_array(c["text"], scrub_values=True),
        "params": _json_array(c["params"], drop_secret_keys=True),
        "prompt_tokens": _int(c["prompt_tokens"]),
        "completion_tokens": _int(c["completion_tokens"]),
        "cost": _float(c["cost"]),
        "cached_uncached_cost": _float(c["uncached_cost"]),
        "latency_s": _float(c["latency_s"]),
        "cached_uncached_latency_s": _float(c["uncached_latency_s"]),
        "wall_s": _float(c["wall_s"]),
        "cache_hit": _bool(c["cache_hit"]),
        "attempt": _int(c["attempt"]),
        "will_retry": _bool(c["will_retry"]),
        "finish_reason": _str_array(c["finish_reason"]),
        "error_kind": _str_array(c["error_kind"]),
        "error_message": _str_array(c["error_message"], scrub_values=True),
        "started_at": _ts_array(c["started_at"]),
        "ended_at": _ts_array(c["ended_at"]),
        "tags": _json_array([t or None for t in c["tags"]], drop_secret_keys=True),
    })


LM_SELECT = """
SELECT call_id || ':' || attempt AS id, 'lm' AS kind, call_id, trace_id, parent_id,
       json_extract_string(tags, '$.run_id') AS run_id,
       json_extract_string(tags, '$.trial_id') AS trial_id,
       model, provider, inputs,
       CASE WHEN text IS NULL THEN NULL ELSE json_object('text', text) END AS outputs,
       params, prompt_tokens, completion_tokens, cost,
       CASE WHEN cache_hit THEN cached_uncached_cost ELSE cost END AS uncached_cost,
       latency_s,
       CASE WHEN cache_hit THEN cached_uncached_latency_s ELSE latency_s END
           AS uncached_latency_s,
       wall_s, cache_hit, attempt, will_retry, finish_reason, error_kind, error_message,
       started_at, ended_at, tags
FROM {batch}
"""

# -- program calls ----------------------------------------------------------------------------

_PROGRAM_FIELDS = ("call_id", "trace_id", "parent_id", "module", "kind", "inputs", "config",
                   "started_at", "ended_at", "outputs", "cost", "latency_s", "lm_calls",
                   "error_kind", "error_message", "tags")
_PROGRAM_OPTIONAL = ("adapter_used", "raw_text", "uncached_cost", "uncached_latency_s",
                     "prompt_tokens", "completion_tokens")


def _optional(records: Sequence[Any], name: str) -> list[Any]:
    return [getattr(r, name, None) for r in records]


def _single_model(config: Any) -> str | None:
    """The model of a program config: a predictor's own config (``{"model": ...}``), or
    ``{path: config}`` of a program whose predictors all use one model."""
    if type(config) is dict:
        model = config.get("model")
        if isinstance(model, str):  # a predictor's own config: the common case
            return model
        if len(config) == 1:
            (only,) = config.values()
            model = only.get("model") if type(only) is dict else None
            return None if model is None else str(model)
    if not isinstance(config, Mapping):
        return None
    models = {c.get("model") for c in config.values() if isinstance(c, Mapping)}
    models.discard(None)
    return str(models.pop()) if len(models) == 1 else None


def program_table(records: Sequence[Any]) -> pa.Table:
    """``ProgramCallRecord`` objects as the Arrow input of :data:`PROGRAM_SELECT`."""
    c = _columns(records, _PROGRAM_FIELDS)
    raw = _optional(records, "raw_text")
    outputs = [o if o is not None or r is None else {"raw_text": r}
               for o, r in zip(c["outputs"], raw, strict=True)]
    return _table({
        "call_id": _str_array(c["call_id"]),
        "trace_id": _str_array(c["trace_id"]),
        "parent_id": _str_array(c["parent_id"]),
        "module": _str_array(c["module"]),
        "module_kind": _str_array(c["kind"]),
        "adapter": _str_array(_optional(records, "adapter_used")),
        "model": _str_array([_single_model(cfg) for cfg in c["config"]]),
        "inputs": _json_array(c["inputs"], drop_secret_keys=False),
        "outputs": _json_array(outputs, drop_secret_keys=False),
        "params": _json_array(c["config"], drop_secret_keys=True),
        "prompt_tokens": _int(_optional(records, "prompt_tokens")),
        "completion_tokens": _int(_optional(records, "completion_tokens")),
        "cost": _float(c["cost"]),
        "uncached_cost": _float(_optional(records, "uncached_cost")),
        "latency_s": _float(c["latency_s"]),
        "uncached_latency_s": _float(_optional(records, "uncached_latency_s")),
        "lm_calls": _int(c["lm_calls"]),
        "error_kind": _str_array(c["error_kind"]),
        "error_message": _str_array(c["error_message"], scrub_values=True),
        "started_at": _ts_array(c["started_at"]),
        "ended_at": _ts_array(c["ended_at"]),
        "tags": _json_array([t or None for t in c["tags"]], drop_secret_keys=True),
    })


PROGRAM_SELECT = """
SELECT call_id AS id, 'program' AS kind, call_id, trace_id, parent_id,
       json_extract_string(tags, '$.run_id') AS run_id,
       json_extract_string(tags, '$.trial_id') AS trial_id,
       module, module_kind, adapter, model, inputs, outputs, params, prompt_tokens,
       completion_tokens, cost, uncached_cost, latency_s, uncached_latency_s,
       epoch_us(ended_at - started_at) / 1e6 AS wall_s, lm_calls, error_kind,
       error_message, started_at, ended_at, tags
FROM {batch}
"""

# -- parse fallbacks --------------------------------------------------------------------------


def parse_fallback_table(events: Sequence[Mapping[str, Any]]) -> pa.Table:
    """``program.parse_fallback`` dicts as the Arrow input of :data:`PARSE_FALLBACK_SELECT`."""
    def col(name: str) -> list[Any]:
        return [e.get(name) for e in events]

    raw = col("raw")
    return _table({
        "call_id": _str_array([None if v is None else str(v) for v in col("call_id")]),
        "adapter": _str_array(col("adapter")),
        "outputs": _json_array([None if r is None else {"raw_text": r} for r in raw],
                               drop_secret_keys=False),
        "params": _json_array([{"adapter": e.get("adapter"), "fallback": e.get("fallback")}
                               for e in events], drop_secret_keys=True),
        "error_message": _str_array(col("error"), scrub_values=True),
        "at": _ts_array(col("time")),
    })


PARSE_FALLBACK_SELECT = """
SELECT b.call_id || ':parse_fallback' AS id, 'parse_fallback' AS kind, b.call_id,
       l.trace_id, l.parent_id, l.run_id, l.trial_id, b.adapter, l.model, l.provider,
       b.outputs, b.params, 'parse_error' AS error_kind, b.error_message,
       b.at AS started_at, b.at AS ended_at, l.tags
FROM {batch} AS b
LEFT JOIN (SELECT call_id, any_value(trace_id) AS trace_id, any_value(parent_id) AS parent_id,
                  any_value(run_id) AS run_id, any_value(trial_id) AS trial_id,
                  any_value(model) AS model, any_value(provider) AS provider,
                  any_value(tags) AS tags
           FROM executions
           WHERE kind = 'lm' AND call_id IN (SELECT call_id FROM {batch})
           GROUP BY call_id) AS l USING (call_id)
"""

# -- runs, trials, programs, spaces (low volume: one row at a time) ---------------------------


def _get(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def upsert_row(table: str, columns: Iterable[tuple[str, str]], record: Any
               ) -> tuple[str, tuple[Any, ...]]:
    """(key, row) for a run / trial / program / space record or dict.

    ``columns`` is ((name, kind), ...) of the target table; JSON columns are
    scrubbed; a trial's typed objective columns come from its ``values``.
    """
    refresh_secrets()
    values = _get(record, "values") if table == "trials" else None
    row: list[Any] = []
    for name, kind in columns:
        if table == "trials" and name == "objective_values":
            value: Any = values
        elif table == "trials" and name in ("accuracy", "cost", "latency_s"):
            value = _coerce_number(values.get(name)) if isinstance(values, Mapping) else None
        else:
            value = _get(record, name)
        if kind == "json":
            value = to_json(value)
        elif kind == "str" and value is not None:
            value = scrub_text(str(value))
        row.append(value)
    if row[0] is None:
        raise ValueError(f"a {table} record needs its key {next(iter(columns))[0]!r}")
    return str(row[0]), tuple(row)
