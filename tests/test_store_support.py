"""Record factories and subprocess scripts shared by the store tests (no tests here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dspex_lab.lm._types import LMCallRecord
from dspex_lab.programs.records import ProgramCallRecord

ROOT = Path(__file__).resolve().parents[1]


def lm_record(i: int, *, attempt: int = 1, call_id: str | None = None, error: str | None = None,
              will_retry: bool = False, cache_hit: bool = False, tags: dict[str, str] | None = None,
              params: dict[str, Any] | None = None, parent_id: str | None = "prog-0",
              trace_id: str = "trace-0", text: str | None = "the answer",
              model: str = "sim/small", content: str | None = None) -> LMCallRecord:
    started = 1_700_000_000.0 + i
    failed = error is not None
    return LMCallRecord(
        call_id or f"call-{i}", trace_id, parent_id, model, "sim",
        [{"role": "system", "content": "Answer the question."},
         {"role": "user", "content": content if content is not None else f"question {i}"}],
        dict(params if params is not None else {"temperature": 0.0}), attempt, started,
        ended_at=started + 0.25, text=None if failed else text,
        prompt_tokens=None if failed else 40, completion_tokens=None if failed else 5,
        cost=None if failed else (0.0 if cache_hit else 1e-5),
        latency_s=None if failed else (0.001 if cache_hit else 0.2), wall_s=0.25,
        cache_hit=cache_hit, uncached_cost=1e-5 if cache_hit else None,
        uncached_latency_s=0.2 if cache_hit else None,
        finish_reason=None if failed else "stop", error_kind=error,
        error_message=f"{error} happened" if failed else None, will_retry=will_retry,
        tags=dict(tags or {}))


def program_record(i: int, *, call_id: str | None = None, error: str | None = None,
                   tags: dict[str, str] | None = None, module: str = "Predict",
                   config: dict[str, Any] | None = None, trace_id: str = "trace-0",
                   started: float | None = None, latency: float = 0.2,
                   cost: float | None = 1e-5) -> ProgramCallRecord:
    t0 = started if started is not None else 1_700_000_000.0 + i
    failed = error is not None
    return ProgramCallRecord(
        call_id or f"prog-{i}", trace_id, None, module, "predict", {"question": f"q{i}"},
        config if config is not None else {"module": "predict", "model": "sim/small",
                                           "adapter": "chat", "temperature": 0.0},
        t0, ended_at=t0 + latency, outputs=None if failed else {"answer": str(i)},
        cost=cost, latency_s=latency, lm_calls=1, error_kind=error,
        error_message=f"{error}!" if failed else None,
        raw_text="garbled" if failed else None, tags=dict(tags or {}))


def run_python(code: str, *args: str, timeout: float = 60, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this checkout importable."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=child_env(env), cwd=ROOT)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = (str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.update(extra or {})
    return env


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# A process that records LM attempts on the bus at a steady rate until killed, done, or
# the file named by $STOP_FILE exists, printing "<emitted> <durable>" after every tick
# (durable: rows the writer committed).
WRITER_SCRIPT = """
import os, sys, time
from dspex_lab import events
from dspex_lab.lm._types import LMCallRecord
from dspex_lab.store import Store

path, total, per_tick, tick_s, flush_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
    float(sys.argv[4]), int(sys.argv[5])
store = Store(path, flush_ms=flush_ms)
store.attach()
stop_file = os.environ.get("STOP_FILE")
emitted = 0
next_tick = time.monotonic()
while emitted < total and not (stop_file and os.path.exists(stop_file)):
    for _ in range(min(per_tick, total - emitted)):
        now = time.time()
        events.emit("lm.completed", LMCallRecord(
            f"w{emitted}", "trace", None, "sim/small", "sim",
            [{"role": "user", "content": f"question {emitted}"}], {"temperature": 0.0}, 1,
            now, ended_at=now, text="ok", prompt_tokens=3, completion_tokens=1, cost=1e-6,
            latency_s=0.01, wall_s=0.01))
        emitted += 1
    print(emitted, store.stats()["rows_written"]["executions"], flush=True)
    next_tick += tick_s
    time.sleep(max(0.0, next_tick - time.monotonic()))
store.close()
print("done", emitted, flush=True)
"""
