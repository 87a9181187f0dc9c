"""The store's compiled converter (dspex_lab/store/_fastrows.c) against the Python one.

Both turn records into the Arrow columns the writer inserts; the compiled one must give
the same rows for anything a record may hold, and leave to the Python one every column
holding a value it does not handle exactly alike (str subclasses, sets, 65-bit ints,
non-str keys, lone surrogates, objects with ``to_dict``, ...). Hypothesis generates the
records; secret-named keys, secret environment values and bearer tokens are among them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_support import lm_record, program_record

from dspex_lab.store import Store, _rows

SECRET = "sk-planted-secret-0123456789"
pytestmark = pytest.mark.skipif(not _rows.compiled_available() and
                                bool(os.environ.get("DSPEX_NO_COMPILE")),
                                reason="built with DSPEX_NO_COMPILE: no compiled converter")


@pytest.fixture(autouse=True)
def _planted_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DSPEX_TEST_API_KEY", SECRET)
    _rows.refresh_secrets()
    yield
    monkeypatch.delenv("DSPEX_TEST_API_KEY")
    _rows.refresh_secrets()
    _rows.use_compiled(True)


def test_the_compiled_converter_is_built_from_this_source() -> None:
    """pip install (hatch_build.py) builds it wherever a C compiler exists, as in CI;
    a build from an older _fastrows.c is refused at import."""
    assert _rows.compiled_available(), (
        "dspex_lab/store/_fastrows*.so is missing: reinstall with `pip install -e .` "
        "(it needs a C compiler; the build prints why it could not compile)")
    module = _rows._compiled_module
    source = Path(_rows.__file__).with_name("_fastrows.c")
    assert hashlib.sha256(source.read_bytes()).hexdigest() == module.SOURCE_SHA


def test_a_stale_build_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from dspex_lab.store import _fastrows

    monkeypatch.setattr(_fastrows, "SOURCE_SHA", "0" * 64)
    with pytest.warns(RuntimeWarning, match="built from another version.*pip install -e"):
        assert _rows._load_compiled() is None


# -- values a record may hold ---------------------------------------------------------------

class _Str(str):
    """A str subclass: pyarrow and orjson take it; the compiled path leaves it."""


class _WithDict:
    def to_dict(self) -> dict[str, Any]:
        return {"via": "to_dict", "api_key": SECRET}


_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "ünïcødé ✓", "line\nbreak\t\"quoted\" \\ \x00\x1f\x7f",
                     f"key {SECRET} inside", "Authorization: Bearer abc.def-123",
                     "BeArEr tok3n_value", "\ud800 lone surrogate", "x" * 300]),
)
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.7, 1e-05, 2.1e-05, -0.0, 1e16, 5e-324, 1e300]))
_ints = st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from([2**63, -2**63 - 1, 2**70]))
_keys = st.one_of(st.text(max_size=8),
                  st.sampled_from(["api_key", "Authorization", "x-api-key", "openai_api_key",
                                   "headers", "session_token", "model", "temperature"]))
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=4),
    ),
    max_leaves=12,
)
_odd = st.sampled_from([_Str("sub"), {1, 2}, {3: "int key"}, _WithDict(), b"bytes",
                        [[[[["deep"]]]]]])
_json_field = st.one_of(_json, _odd)
_text_field = st.one_of(st.none(), _text, st.sampled_from([_Str("sub"), 42, 1.5]))
_number_field = st.one_of(st.none(), _ints, _floats, st.sampled_from([True, "2.5", "x"]))
_int_field = st.one_of(st.none(), _ints, st.sampled_from([True, 2.0, "7"]))
_bool_field = st.one_of(st.none(), st.booleans(), st.sampled_from([1, 0, "yes"]))
_ts_field = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                      st.integers(-10**10, 10**10),
                      st.sampled_from([1.7e9 + 0.5e-6, 1.7e9 + 1.5e-6, 1e300, "1.5"]))
_tags_field = st.one_of(
    st.none(), st.just({}),
    st.dictionaries(st.sampled_from(["run_id", "trial_id", "api_key", "note"]),
                    st.one_of(st.none(), _text, _ints, st.just(["x"])), max_size=4),
    st.sampled_from([["not", "a", "dict"], _WithDict()]),
)

_LM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "call_id": _text_field, "model": _text_field, "provider": _text_field,
    "messages": _json_field, "params": _json_field, "text": _text_field,
    "prompt_tokens": _int_field, "attempt": _int_field, "cost": _number_field,
    "uncached_cost": _number_field, "latency_s": _number_field, "cache_hit": _bool_field,
    "will_retry": _bool_field, "error_message": _text_field, "started_at": _ts_field,
    "ended_at": _ts_field, "tags": _tags_field,
}
_PROGRAM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "module": _text_field, "inputs": _json_field, "outputs": _json_field,
    "raw_text": st.one_of(st.none(), _text), "cost": _number_field,
    "lm_calls": _int_field, "error_message": _text_field, "started_at": _ts_field,
    "tags": _tags_field,
}


@st.composite
def _records(draw: st.DrawFn, make: Any, fields: dict[str, st.SearchStrategy[Any]]
             ) -> list[Any]:
    records = []
    for i in range(draw(st.integers(1, 6))):
        record = make(i)
        for name in draw(st.sets(st.sampled_from(sorted(fields)), max_size=len(fields))):
            setattr(record, name, draw(fields[name]))
        records.append(record)
    return records


# -- comparing ------------------------------------------------------------------------------

def _build(table: Any, records: list[Any], compiled: bool) -> pa.Table | Exception:
    _rows.use_compiled(compiled)
    try:
        return table(records)
    except Exception as exc:  # the writer drops such a record; both must agree
        return exc
    finally:
        _rows.use_compiled(True)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _assert_same_rows(table: Any, records: list[Any]) -> None:
    python = _build(table, records, compiled=False)
    compiled = _build(table, records, compiled=True)
    if isinstance(python, Exception):
        assert isinstance(compiled, Exception), f"only the Python path failed: {python!r}"
        return
    assert not isinstance(compiled, Exception), compiled
    assert sorted(compiled.column_names) == sorted(python.column_names)
    # the columns that hold free text (ids, model and provider names are not searched)
    scrubbed = {c.name for c in (*_rows._LM_COLUMNS, *_rows._PROGRAM_COLUMNS)
                if c.scrub or c.kind not in (_rows.K_STR,)} | {"outputs", "params"}
    for name in python.column_names:
        ours, theirs = compiled.column(name), python.column(name)
        if pa.types.is_timestamp(theirs.type):  # as microseconds: years past 9999 too
            assert ours.type == theirs.type
            ours, theirs = ours.cast(pa.int64()), theirs.cast(pa.int64())
        json_column = str(theirs.type).startswith("extension<arrow.json")
        for row, (x, y) in enumerate(zip(ours.to_pylist(), theirs.to_pylist(), strict=True)):
            if isinstance(x, str) and name in scrubbed:
                assert SECRET not in x and "abc.def-123" not in x, (name, x)
                assert "tok3n_value" not in x, (name, x)
            if json_column and x is not None and y is not None:
                # the same JSON; number spelling may differ (orjson 0.00001, repr 1e-05)
                x, y = json.loads(x), json.loads(y)
            assert _same(x, y) or x == y, f"{name} row {row}: compiled {x!r}, python {y!r}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records(lm_record, _LM_FIELDS))
def test_lm_rows_are_the_same_either_way(records: list[Any]) -> None:
    _assert_same_rows(_rows.lm_table, records)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records(program_record, _PROGRAM_FIELDS))
def test_program_rows_are_the_same_either_way(records: list[Any]) -> None:
    _assert_same_rows(_rows.program_table, records)


def test_a_column_the_compiled_path_cannot_take_falls_back_alone() -> None:
    """One set in one row's params: that column comes from Python, the others from C."""
    records = [lm_record(i, params={"temperature": 0.5}) for i in range(3)]
    records[1].params = {"stop": {"b", "a"}}
    raw = _rows._compiled_module.convert(
        records, [c.compiled_spec for c in _rows._LM_COLUMNS], _rows._key_memo,
        _rows.is_secret_key)
    names = [c.name for c in _rows._LM_COLUMNS]
    assert raw[names.index("params")] is None
    assert all(r is not None for n, r in zip(names, raw, strict=True) if n != "params")
    table = _rows.lm_table(records)
    assert json.loads(table.column("params")[1].as_py()) == {"stop": ["a", "b"]}


def test_secret_keys_are_dropped_at_any_depth_by_the_compiled_path() -> None:
    record = lm_record(1, params={"temperature": 0.1, "api_key": SECRET,
                                  "extra": [{"Authorization": "x", "ok": 1}]})
    params = json.loads(_rows.lm_table([record]).column("params")[0].as_py())
    assert params == {"temperature": 0.1, "extra": [{"ok": 1}]}


def test_a_big_batch_is_the_same_either_way(tmp_path: Path) -> None:
    """Several thousand rows (past the pause interval and buffer growth), through the
    whole store: the file holds the same rows with either converter."""
    def rows(compiled: bool) -> pd.DataFrame:
        _rows.use_compiled(compiled)
        path = tmp_path / f"{compiled}.duckdb"
        with Store(path) as store:
            for i in range(3000):
                content = f"q{i} \u00e9\n{SECRET if i % 500 == 0 else ''}"
                store.record("lm.completed",
                             lm_record(i, tags={"run_id": f"r{i % 7}"}, content=content))
                store.record("program.completed",
                             program_record(i, error="bad" if i % 9 == 0 else None))
            store.flush()
            return store.sql("select * exclude (tags, inputs, outputs, params), "
                             "tags::varchar as tags, inputs::varchar as inputs, "
                             "outputs::varchar as outputs, params::varchar as params "
                             "from executions order by id")

    python, compiled = rows(False), rows(True)
    assert len(compiled) == 6000 and compiled.equals(python)
    assert not compiled.astype(str).apply(lambda c: c.str.contains(SECRET)).any().any()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 64), st.sampled_from(
    [b"", b"bearer", b"BEARER", b"BeArEr", b"bearEr ", b"beare", b"earer", b"bearbearer"]),
    st.lists(st.binary(min_size=1, max_size=6), max_size=2))
def test_the_compiled_secret_search_finds_what_python_finds(
        data: bytes, at: int, word: bytes, needles: list[bytes]) -> None:
    text = data[:at] + word + data[at:]
    expected = b"bearer" in text.lower() or any(n in text for n in needles)
    assert _rows._compiled_module.may_hold_secret(text, tuple(needles)) is expected
    assert _rows._compiled_module.may_hold_secret(bytearray(text), tuple(needles)) is expected
