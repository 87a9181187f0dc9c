"""Records to Arrow columns, in bulk, with secrets scrubbed.

The bus subscriber only appends each record to a list; this module turns a
whole batch of records into Arrow tables on the writer thread. Each column is
described once (``_Col``); the compiled converter (``_fastrows.c``, built by
``pip install``) builds every column it can in one pass over the records, and
the Python code below builds the rest (every column where it is not built).
Both give the same rows (``tests/test_store_compiled.py``).

The Python converter works column by column: ``operator.attrgetter`` pulls
every field of every record in C, one ``orjson.dumps`` per JSON value appended
to one growing buffer that becomes the Arrow column as it is (offsets, no
per-row ``str``), timestamps are converted in numpy.

Derived columns (row id, ``{"text": ...}``, uncached cost/latency) are computed
by DuckDB in the ``INSERT ... SELECT``; ``run_id``/``trial_id`` are read from
the tags here (parsing every row's tags in DuckDB cost more). Records are read
by attribute, so the store never imports the record classes.

Secrets: nothing here reads the environment for data; the writer learns the
*values* of secret-looking environment variables only to blank them out.

1. Keys: in every mapping written as JSON (request params, program configs,
   tags, run/trial fields) a key naming a secret (``api_key``,
   ``authorization``, ``headers``, ``*_token``, ``password``, ...) is dropped
   with its value, at any depth. Each value's JSON text is first searched for
   hints of such keys (remembered per distinct text, since params, configs
   and tags repeat); only a value with a hint is walked in Python.
2. Values: each text column (JSON included) of a batch is searched, as one
   buffer, for the current values of secret-looking environment variables
   (``*_API_KEY``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ...; 8+
   characters) and for ``Bearer <token>``; rows that contain one get it
   replaced by ``***``.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "LM_SELECT",
    "PARSE_FALLBACK_SELECT",
    "PROGRAM_SELECT",
    "compiled_available",
    "converter",
    "is_secret_key",
    "lm_table",
    "parse_fallback_table",
    "program_table",
    "refresh_secrets",
    "scrub",
    "scrub_text",
    "to_json",
    "upsert_row",
    "use_compiled",
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
    if "bearer" in text.lower():  # "Bearer", "BEARER", "bEaReR": the pattern ignores case
        text = _BEARER.sub(r"\1" + REDACTED, text)
    return text


def _scrub_bytes(data: bytes) -> bytes:
    for s in _secrets_bytes:
        if s in data:
            data = data.replace(s, _REDACTED_B)
    if b"bearer" in data.lower():
        data = _BEARER_B.sub(rb"\1" + _REDACTED_B, data)
    return data


def _needs_value_scrub(joined: bytes | bytearray) -> bool:
    """Whether a column's text (one buffer) may hold a secret value or a bearer token:
    then its rows are scrubbed one by one. The compiled search is one pass over the
    buffer (~0.2 ns per byte) instead of one per pattern."""
    if _use_compiled:
        return bool(_compiled_module.may_hold_secret(joined, _secrets_bytes))
    return any(s in joined for s in _secrets_bytes) or b"bearer" in joined.lower()


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


# JSON text -> whether it holds a key hint. Params, configs and tags repeat from row to
# row, so most rows cost one dict lookup instead of ten substring searches. Only short
# texts are kept, so the memo stays under ~8 MB.
_hint_memo: dict[bytes, bool] = {}
_HINT_MEMO_ROWS = 4096
_HINT_MEMO_TEXT = 2048


def _has_key_hint(text: bytes) -> bool:
    """Whether JSON text may hold a secret-named key (its object is then walked)."""
    hit = _hint_memo.get(text)
    if hit is None:
        lowered = text.lower()
        hit = any(h in lowered for h in _KEY_HINTS)
        if len(text) <= _HINT_MEMO_TEXT:
            if len(_hint_memo) >= _HINT_MEMO_ROWS:
                _hint_memo.clear()
            _hint_memo[text] = hit
    return hit


def _scrubbed_json(obj: Any) -> bytes:
    """JSON of ``obj`` without secret-named keys (values are blanked per column)."""
    try:
        data = _dumps(obj)
    except TypeError:  # perhaps only under a key that is dropped anyway
        return _dumps(scrub(obj))
    return _dumps(scrub(obj)) if _has_key_hint(data) else data


def to_json(obj: Any) -> str | None:
    """JSON text of ``obj`` with secret-named keys dropped and secret values blanked."""
    if obj is None:
        return None
    return _scrub_bytes(_scrubbed_json(obj)).decode()


# -- Arrow columns --------------------------------------------------------------------------

_local = threading.local()


def set_pause(pause: Callable[[], object] | None) -> None:
    """Have this thread call ``pause()`` between columns while it converts (the writer
    uses it to let its DuckDB thread have the GIL; see ``_writer``)."""
    _local.pause = pause


def _between_columns() -> None:
    pause = getattr(_local, "pause", None)
    if pause is not None:
        pause()



def _dump_rows(objs: Sequence[Any], drop_secret_keys: bool) -> tuple[bytearray, list[int]]:
    """Each object's JSON text appended to one buffer, and the end offset of every row
    (None becomes ``null``, made a NULL by :func:`_text_array`).

    One growing buffer rather than one ``bytes`` per row: orjson allocates ~1 KB per
    call, and freeing it at once lets the next call reuse that memory. Keeping a
    batch's worth alive cost a fresh page fault per row on the 2-core VM (~5 µs each,
    4x the serialization itself). Without keys to check the loop runs in C (``map`` of
    ``bytearray.__iadd__``).
    """
    try:
        if drop_secret_keys:
            return _dump_checked_rows(objs)
        buf = bytearray()
        return buf, list(map(len, map(buf.__iadd__, map(orjson.dumps, objs))))
    except TypeError:  # something orjson cannot encode natively: the careful way
        buf = bytearray()
        convert = _scrubbed_json if drop_secret_keys else _dumps
        return buf, list(map(len, map(buf.__iadd__, map(convert, objs))))


def _dump_checked_rows(objs: Sequence[Any]) -> tuple[bytearray, list[int]]:
    """:func:`_dump_rows` for mappings that may hold secret-named keys: each row's JSON
    is checked for key hints (remembered per distinct text) and walked only on a hint.
    Measured cheaper than ten substring searches over the whole column, even for small
    tags and params."""
    buf = bytearray()
    ends: list[int] = []
    end = ends.append
    dumps = orjson.dumps
    memo = _hint_memo
    for obj in objs:
        text = dumps(obj)
        hit = memo.get(text)
        if hit or (hit is None and _has_key_hint(text)):
            text = _dumps(scrub(obj))
        buf += text
        end(len(buf))
    return buf, ends


def _scrub_rows(buf: bytearray, ends: list[int]) -> tuple[bytearray, list[int]]:
    """Rows of ``buf`` with secret values blanked, row by row (offsets move)."""
    out = bytearray()
    new_ends: list[int] = []
    start = 0
    for stop in ends:
        out += _scrub_bytes(bytes(buf[start:stop]))
        new_ends.append(len(out))
        start = stop
    return out, new_ends


def _text_array(buf: bytearray, ends: list[int]) -> pa.Array:
    """Rows of UTF-8 text in one buffer as an Arrow string array without copying it; a
    row that is exactly ``null`` is a NULL (only None serializes to it)."""
    import numpy as np
    import pyarrow as pa

    n = len(ends)
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = ends
    bitmap, nulls = _null_rows(np.frombuffer(buf, dtype=np.uint8), offsets)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf),
                                            bitmap, nulls)


_NULL = int.from_bytes(b"null", "little")


def _null_rows(data: Any, offsets: Any) -> tuple[pa.Buffer | None, int]:
    """Validity bitmap and NULL count of JSON rows: the rows of 4 bytes spelling ``null``
    (vectorized: only rows of that length are looked at)."""
    import numpy as np
    import pyarrow as pa

    candidates = np.flatnonzero(np.diff(offsets) == 4)
    if not len(candidates):
        return None, 0
    starts = offsets[candidates]
    word = (data[starts].astype(np.uint32) | data[starts + 1].astype(np.uint32) << 8
            | data[starts + 2].astype(np.uint32) << 16
            | data[starts + 3].astype(np.uint32) << 24)
    null_rows = candidates[word == _NULL]
    if not len(null_rows):
        return None, 0
    valid = np.ones(len(offsets) - 1, dtype=bool)
    valid[null_rows] = False
    return pa.py_buffer(np.packbits(valid, bitorder="little")), len(null_rows)


def _json_array(objs: Sequence[Any], *, drop_secret_keys: bool) -> pa.Array:
    """A JSON column: one ``orjson.dumps`` per value; mappings lose secret-named keys
    (``drop_secret_keys``); secret values are blanked after one search of the column.

    Typed as Arrow's canonical JSON extension (``arrow.json``) where pyarrow has it:
    DuckDB then takes the text as JSON as it is, instead of parsing every value again
    to validate it (orjson wrote it; ~4% of DuckDB's time per row in a profile).
    """
    _between_columns()
    return _json_column(*_dump_rows(objs, drop_secret_keys))


def _json_column(buf: bytearray, ends: list[int]) -> pa.Array:
    """Rows of JSON text (one buffer, end offsets) as a JSON column, secret values
    blanked after one search of the whole buffer."""
    if _needs_value_scrub(buf):
        buf, ends = _scrub_rows(buf, ends)
    return _as_json(_text_array(buf, ends))


def _as_json(array: pa.Array) -> pa.Array:
    import pyarrow as pa

    if not _json_extension():
        return array
    return pa.ExtensionArray.from_storage(pa.json_(array.type), array)


@functools.cache
def _json_extension() -> bool:
    """Whether JSON columns can travel typed: pyarrow >= 19 has the type, DuckDB >= 1.2
    maps it to JSON (older versions get plain text, which DuckDB validates)."""
    import duckdb
    import pyarrow as pa

    try:
        version = tuple(int(part) for part in duckdb.__version__.split(".")[:2])
    except ValueError:
        return False
    return hasattr(pa, "json_") and version >= (1, 2)


def _str_array(values: Sequence[Any], *, scrub_values: bool = False) -> pa.Array:
    _between_columns()
    import pyarrow as pa

    if scrub_values:
        try:
            joined = "\x00".join(filter(None, values))
        except TypeError:
            joined = "\x00".join(v for v in values if isinstance(v, str))
        if any(s in joined for s in _secrets_str) or "bearer" in joined.lower():
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
    """Epoch seconds as TIMESTAMP (microseconds, naive UTC), rounded half to even like
    ``round(seconds * 1e6)``, in numpy (two columns per row add up; ``pyarrow.compute``
    would cost ~0.5 s to import when a process records its first rows)."""
    _between_columns()
    import numpy as np
    import pyarrow as pa

    try:
        seconds = pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return _ts_one_by_one(values)  # text or some other non-number among them
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: checked below
        micros = np.rint(seconds.to_numpy(zero_copy_only=False) * 1e6)
    valid = np.isfinite(micros)  # NULL comes out as NaN; NaN and inf become NULL too
    if np.any(np.abs(micros[valid]) >= 2.0**63):
        return _ts_one_by_one(values)
    ints = np.where(valid, micros, 0.0).astype(np.int64)
    return pa.array(ints, pa.timestamp("us"), mask=None if valid.all() else ~valid)


def _ts_one_by_one(values: Sequence[Any]) -> pa.Array:
    import pyarrow as pa

    return pa.array([_micros(v) for v in values], pa.timestamp("us"))


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


def _tags(values: Sequence[Any]) -> list[Any]:
    """Tags as written: an empty mapping is NULL."""
    return [t or None for t in values]


def _tag_column(tags: Sequence[Any], name: str) -> pa.Array:
    """``run_id`` or ``trial_id`` from each row's tags, as text with secret values
    blanked like the tags themselves.

    Read here rather than with ``json_extract_string`` in the INSERT: DuckDB's side
    is the writer's bottleneck, and parsing every row's tags there cost more than
    this does here.
    """
    try:  # the common case: every record's tags are a dict
        values: list[Any] = list(map(dict.get, tags, repeat(name)))
    except TypeError:
        values = [t.get(name) if isinstance(t, Mapping) else None for t in tags]
    if not set(map(type, values)) <= _TEXT_TYPES:  # what json_extract_string gave
        values = [v if v is None or isinstance(v, str) else _dumps(v).decode()
                  for v in values]
    return _str_array(values, scrub_values=True)


_TEXT_TYPES = frozenset({str, type(None)})

# -- column specs: one description, two converters ----------------------------------------
#
# Each Arrow column of a batch is described once (_Col). The compiled converter
# (_fastrows.c) builds every column it can in one pass over the records; a column it
# gives up on (a value it does not handle exactly like the Python code below: a str
# subclass, a set, a non-str dict key, a 65-bit int, ...) and every column when it is
# not compiled are built by the Python builders. Both give the same rows
# (tests/test_store_compiled.py compares them).

K_STR, K_JSON, K_JSON_SECRET, K_JSON_TAGS, K_TAG, K_INT, K_FLOAT, K_BOOL, K_TS = range(9)
_TEXT_KINDS = (K_STR, K_TAG)
_JSON_KINDS = (K_JSON, K_JSON_SECRET, K_JSON_TAGS)


@dataclass(frozen=True, slots=True)
class _Col:
    """One Arrow column: its name, the record attribute it comes from, and how."""

    name: str
    field: str
    kind: int
    scrub: bool = False    # K_STR: blank secret values (every other text kind always is)
    optional: bool = False  # a record without the attribute reads as None
    tag: str = ""          # K_TAG: the key read from the attribute's dict

    @property
    def compiled_spec(self) -> tuple[str, int, bool, str]:
        return self.field, self.kind, self.optional, self.tag


def _python_column(col: _Col, values: Sequence[Any]) -> pa.Array:
    kind = col.kind
    if kind == K_STR:
        return _str_array(values, scrub_values=col.scrub)
    if kind in _JSON_KINDS:
        if kind == K_JSON_TAGS:
            values = _tags(values)
        return _json_array(values, drop_secret_keys=kind != K_JSON)
    if kind == K_TAG:
        return _tag_column(values, col.tag)
    if kind == K_INT:
        return _int(values)
    if kind == K_FLOAT:
        return _float(values)
    if kind == K_BOOL:
        return _bool(values)
    return _ts_array(values)


def _field(records: Sequence[Any], name: str, optional: bool) -> list[Any]:
    """One field of every record (None where an optional one is missing)."""
    try:  # one C-level pass; no per-row tuple, so no garbage-collector churn
        return list(map(operator.attrgetter(name), records))
    except AttributeError:
        if not optional:
            raise
        return [getattr(r, name, None) for r in records]


def _load_compiled() -> Any:
    """The compiled converter, or None: not built (no C compiler when installed), or
    built from another version of ``_fastrows.c`` than the one next to it (a checkout
    changed since ``pip install -e .``: running it would be running old code)."""
    try:
        from dspex_lab.store import _fastrows
    except ImportError:
        return None
    source = Path(__file__).with_name("_fastrows.c")
    if _fastrows.SOURCE_SHA and source.is_file():
        current = hashlib.sha256(source.read_bytes()).hexdigest()
        if current != _fastrows.SOURCE_SHA:
            warnings.warn(f"{_fastrows.__file__} was built from another version of "
                          f"{source}: the store converts records in Python (slower) until "
                          f"it is rebuilt with `pip install -e .`", RuntimeWarning,
                          stacklevel=2)
            return None
    return _fastrows


_compiled_module = _load_compiled()
_use_compiled = _compiled_module is not None


def compiled_available() -> bool:
    """Whether the compiled converter was built (``pip install`` compiles it)."""
    return _compiled_module is not None


def converter() -> str:
    """Which converter the writer uses: ``"compiled"`` or ``"python"``."""
    return "compiled" if _use_compiled else "python"


def use_compiled(enabled: bool) -> bool:
    """Use the compiled converter when it is available (the default) or not; returns
    the previous setting. For comparisons (tests, ``bench/store_write.py``)."""
    global _use_compiled
    previous = _use_compiled
    _use_compiled = enabled and _compiled_module is not None
    return previous


def _build_columns(records: Sequence[Any], spec: tuple[_Col, ...]) -> dict[str, pa.Array]:
    """Every column of ``spec`` for ``records``: compiled where it can be, else Python."""
    records = records if type(records) is list else list(records)
    built: list[pa.Array | None] = [None] * len(spec)
    if _use_compiled:
        _between_columns()
        raw = _compiled_module.convert(records, [c.compiled_spec for c in spec], _key_memo,
                                       is_secret_key, getattr(_local, "pause", None),
                                       _COMPILED_PAUSE_ROWS)
        built = [None if r is None else _compiled_array(c, r, len(records))
                 for c, r in zip(spec, raw, strict=True)]
    fields: dict[str, list[Any]] = {}  # tags feed three columns: read them once
    out: dict[str, pa.Array] = {}
    for col, array in zip(spec, built, strict=True):
        if array is None:
            _between_columns()
            values = fields.get(col.field)
            if values is None:
                values = fields[col.field] = _field(records, col.field, col.optional)
            array = _python_column(col, values)
        out[col.name] = array
    return out


# The compiled converter calls the writer's pause every this many rows (~0.4 ms of work).
_COMPILED_PAUSE_ROWS = 128


def _compiled_array(col: _Col, raw: tuple[Any, ...], n: int) -> pa.Array:
    """An Arrow array from the compiled converter's buffers, secret values blanked."""
    import numpy as np
    import pyarrow as pa

    if col.kind in _TEXT_KINDS or col.kind in _JSON_KINDS:
        data, offsets, validity, nulls = raw
        if (col.scrub or col.kind != K_STR) and _needs_value_scrub(data):
            buf, ends = _scrub_rows(bytearray(data),
                                    np.frombuffer(offsets, np.int64)[1:].tolist())
            moved = np.zeros(n + 1, dtype=np.int64)
            moved[1:] = ends
            data, offsets = buf, moved
        array = pa.LargeStringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(data),
            None if validity is None else pa.py_buffer(validity), nulls)
        return _as_json(array) if col.kind in _JSON_KINDS else array
    values, validity, nulls = raw
    if col.kind == K_BOOL:  # one byte per row -> Arrow's bits
        values = np.packbits(np.frombuffer(values, np.uint8), bitorder="little")
    typ = {K_INT: pa.int64(), K_FLOAT: pa.float64(), K_BOOL: pa.bool_(),
           K_TS: pa.timestamp("us")}[col.kind]
    return pa.Array.from_buffers(typ, n, [None if validity is None else pa.py_buffer(validity),
                                          pa.py_buffer(values)], null_count=nulls)


# -- LM attempts ------------------------------------------------------------------------------

# the columns every execution row has: ids first, outcome, times and tags last
_IDS = (
    _Col("call_id", "call_id", K_STR),
    _Col("trace_id", "trace_id", K_STR),
    _Col("parent_id", "parent_id", K_STR),
)
_OUTCOME = (
    _Col("error_kind", "error_kind", K_STR),
    _Col("error_message", "error_message", K_STR, scrub=True),
    _Col("started_at", "started_at", K_TS),
    _Col("ended_at", "ended_at", K_TS),
    _Col("tags", "tags", K_JSON_TAGS),
    _Col("run_id", "tags", K_TAG, tag="run_id"),
    _Col("trial_id", "tags", K_TAG, tag="trial_id"),
)

_LM_COLUMNS = (
    *_IDS,
    _Col("model", "model", K_STR),
    _Col("provider", "provider", K_STR),
    _Col("inputs", "messages", K_JSON),
    _Col("text", "text", K_STR, scrub=True),
    _Col("params", "params", K_JSON_SECRET),
    _Col("prompt_tokens", "prompt_tokens", K_INT),
    _Col("completion_tokens", "completion_tokens", K_INT),
    _Col("cost", "cost", K_FLOAT),
    _Col("cached_uncached_cost", "uncached_cost", K_FLOAT),
    _Col("latency_s", "latency_s", K_FLOAT),
    _Col("cached_uncached_latency_s", "uncached_latency_s", K_FLOAT),
    _Col("wall_s", "wall_s", K_FLOAT),
    _Col("cache_hit", "cache_hit", K_BOOL),
    _Col("attempt", "attempt", K_INT),
    _Col("will_retry", "will_retry", K_BOOL),
    _Col("finish_reason", "finish_reason", K_STR),
    *_OUTCOME,
)


def lm_table(records: Sequence[Any]) -> pa.Table:
    """``LMCallRecord`` objects (one per attempt) as the Arrow input of :data:`LM_SELECT`."""
    return _table(_build_columns(records, _LM_COLUMNS))


LM_SELECT = """
SELECT call_id || ':' || attempt AS id, 'lm' AS kind, call_id, trace_id, parent_id,
       run_id, trial_id, model, provider, inputs,
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

_PROGRAM_COLUMNS = (
    *_IDS,
    _Col("module", "module", K_STR),
    _Col("module_kind", "kind", K_STR),
    _Col("adapter", "adapter_used", K_STR, optional=True),
    _Col("inputs", "inputs", K_JSON),
    _Col("prompt_tokens", "prompt_tokens", K_INT, optional=True),
    _Col("completion_tokens", "completion_tokens", K_INT, optional=True),
    _Col("cost", "cost", K_FLOAT),
    _Col("uncached_cost", "uncached_cost", K_FLOAT, optional=True),
    _Col("latency_s", "latency_s", K_FLOAT),
    _Col("uncached_latency_s", "uncached_latency_s", K_FLOAT, optional=True),
    _Col("lm_calls", "lm_calls", K_INT),
    *_OUTCOME,
)
_PROGRAM_OUTPUTS = _Col("outputs", "outputs", K_JSON)


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


def _config_key(config: Any) -> tuple[tuple[Any, ...], tuple[int, ...]] | None:
    """What makes two program configs the same within one batch: the same paths
    holding the same objects. Predictors cache their own configuration
    (``own_config``), so every call of one configured program carries the same
    inner dicts in a fresh outer one. Object ids are unique within a batch: the
    batch keeps every record, and so every config, alive while it is converted;
    records must not change after they are emitted (the bus contract)."""
    if type(config) is not dict:
        return None
    return tuple(config), tuple(map(id, config.values()))


def _config_columns(configs: Sequence[Any]) -> tuple[pa.Array, pa.Array]:
    """Program rows' ``params`` (the configuration as JSON, secret-named keys dropped)
    and ``model``, each distinct configuration of the batch serialized once.

    A configuration holds the predictors' demos and instructions, often kilobytes:
    serialized per call it was the largest part of converting a program row."""
    _between_columns()
    memo: dict[Any, tuple[bytes, str | None]] = {}
    buf = bytearray()
    ends: list[int] = []
    models: list[str | None] = []
    end, model = ends.append, models.append
    for config in configs:
        key = _config_key(config)
        hit = None if key is None else memo.get(key)
        if hit is None:
            hit = (_scrubbed_json(config), _single_model(config))
            if key is not None:
                memo[key] = hit
        buf += hit[0]
        end(len(buf))
        model(hit[1])
    return _json_column(buf, ends), _str_array(models)


def program_table(records: Sequence[Any]) -> pa.Table:
    """``ProgramCallRecord`` objects as the Arrow input of :data:`PROGRAM_SELECT`."""
    records = records if type(records) is list else list(records)
    raw = _field(records, "raw_text", optional=True)
    if raw.count(None) == len(raw):
        columns = _build_columns(records, (*_PROGRAM_COLUMNS, _PROGRAM_OUTPUTS))
    else:  # a reply that could not be parsed: keep its text
        columns = _build_columns(records, _PROGRAM_COLUMNS)
        outputs = [o if o is not None or r is None else {"raw_text": r}
                   for o, r in zip(_field(records, "outputs", False), raw, strict=True)]
        columns["outputs"] = _json_array(outputs, drop_secret_keys=False)
    columns["params"], columns["model"] = _config_columns(_field(records, "config", False))
    return _table(columns)


PROGRAM_SELECT = """
SELECT call_id AS id, 'program' AS kind, call_id, trace_id, parent_id,
       run_id, trial_id, module, module_kind, adapter, model,
       inputs, outputs, params, prompt_tokens, completion_tokens, cost, uncached_cost,
       latency_s, uncached_latency_s, epoch_us(ended_at - started_at) / 1e6 AS wall_s,
       lm_calls, error_kind, error_message, started_at, ended_at, tags
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
