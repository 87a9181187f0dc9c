"""LM-path throughput and overhead, as ratios against references measured in the same run.

Prints one JSON object:

- ``ours_calls_per_s``: ``dx.evaluate`` of a Predict program (render, HTTP,
  parse, score, and recording into a DuckDB store, on as by default; the
  response cache is off so every call goes to the server) over N examples at
  64 in flight against a local
  OpenAI-compatible server (the simulator in a separate process, fixed 50 ms
  latency);
- ``raw_calls_per_s``: a bare aiohttp POST loop, same server, same body,
  same concurrency (the practical ceiling);
- ``litellm_calls_per_s``: ``litellm.acompletion``, same server, same concurrency;
- ``ratio_vs_raw`` and ``ratio_vs_litellm``;
- ``overhead_ms_per_call``: sequential calls to a zero-latency server, our
  client CPU time per call minus raw aiohttp's;
- ``import_s``: ``import dspex_lab`` in a fresh interpreter.

Usage: ``python bench/lm_throughput.py [--n 4000] [--litellm-n 2000]``.
The machine is noisy: each throughput path runs ``--rounds`` times
interleaved and the best round counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import aiohttp
import orjson

import dspex_lab as dx
from dspex_lab import sim
from dspex_lab.lm import run_sync

CONCURRENCY = 64


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"question": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(n)]


def _program(base_url: str) -> dx.Predict:
    lm = dx.LM("openai/small", base_url=base_url, api_key="bench", price_in=0.15,
               price_out=0.6, max_concurrency=CONCURRENCY)
    return dx.Predict("question -> answer", lm=lm, adapter="chat")


def _raw_body(program: dx.Predict, question: str) -> bytes:
    from dspex_lab.programs.adapters import get_adapter

    messages = get_adapter("chat").format(program.signature, {"question": question})
    return orjson.dumps({"model": "small", "messages": messages})


async def _raw(base_url: str, bodies: list[bytes], concurrency: int) -> float:
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    pending = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def worker() -> None:
            for body in pending:
                async with session.post(url, data=body, headers=headers) as resp:
                    data = orjson.loads(await resp.read())
                    assert data["choices"][0]["message"]["content"] is not None

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


def _ours(program: dx.Predict, rows: list[dict[str, Any]], concurrency: int) -> float:
    started = time.perf_counter()
    result = dx.evaluate(program, rows, "exact_match", concurrency=concurrency, progress=False)
    elapsed = time.perf_counter() - started
    assert result.n == len(rows) and result.n_failed == 0, result.failures[:3]
    return len(rows) / elapsed


async def _litellm(base_url: str, program: dx.Predict, n: int, concurrency: int) -> float:
    import litellm

    litellm.suppress_debug_info = True
    from dspex_lab.programs.adapters import get_adapter

    adapter = get_adapter("chat")
    questions = iter(range(n))

    async def worker() -> None:
        for i in questions:
            messages = adapter.format(program.signature, {"question": f"What is {i}?"})
            resp = await litellm.acompletion(model="openai/small", api_base=base_url,
                                             api_key="bench", messages=messages)
            assert resp.choices[0].message.content is not None

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def _raw_sequential_cpu(base_url: str, bodies: list[bytes]) -> float:
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    async with aiohttp.ClientSession() as session:
        started = time.process_time()
        for body in bodies:
            async with session.post(url, data=body, headers=headers) as resp:
                orjson.loads(await resp.read())
        return time.process_time() - started


def _ours_sequential_cpu(program: dx.Predict, rows: list[dict[str, Any]]) -> float:
    async def loop() -> float:
        started = time.process_time()
        for row in rows:
            await program.acall(question=row["question"])
        return time.process_time() - started

    return run_sync(loop())


def _import_seconds() -> float:
    code = ("import time; t = time.perf_counter(); import dspex_lab; "
            "print(time.perf_counter() - t)")
    best = min(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout) for _ in range(3))
    return round(best, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="evaluations per throughput path")
    parser.add_argument("--litellm-n", type=int, default=2000, help="litellm calls")
    parser.add_argument("--sequential-n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    rows = _rows(args.n)
    figures: dict[str, Any] = {"n": args.n, "concurrency": CONCURRENCY,
                               "server_latency_ms": 50, "recording": True}
    store_dir = tempfile.mkdtemp(prefix="dspex-bench-")
    dx.configure(store=os.path.join(store_dir, "bench.duckdb"), cache=False)
    with sim.start(process=True, fixed_latency_ms=50, speed=1.0) as slow, \
            sim.start(process=True, fixed_latency_ms=0, speed=0.0) as fast:
        program = _program(slow.base_url)
        bodies = [_raw_body(program, row["question"]) for row in rows]
        _ours(program, rows[:200], CONCURRENCY)  # warm up connections and caches
        run_sync(_raw(slow.base_url, bodies[:200], CONCURRENCY))
        raw_best = ours_best = 0.0
        for _ in range(args.rounds):
            raw_best = max(raw_best, run_sync(_raw(slow.base_url, bodies, CONCURRENCY)))
            ours_best = max(ours_best, _ours(program, rows, CONCURRENCY))
        litellm_rate = 0.0
        if args.litellm_n:
            litellm_rate = run_sync(_litellm(slow.base_url, program, args.litellm_n,
                                             CONCURRENCY))

        fast_program = _program(fast.base_url)
        seq_rows = rows[: args.sequential_n]
        seq_bodies = bodies[: args.sequential_n]
        run_sync(_raw_sequential_cpu(fast.base_url, seq_bodies[:100]))
        _ours_sequential_cpu(fast_program, seq_rows[:100])
        raw_cpu = min(run_sync(_raw_sequential_cpu(fast.base_url, seq_bodies))
                      for _ in range(args.rounds))
        ours_cpu = min(_ours_sequential_cpu(fast_program, seq_rows) for _ in range(args.rounds))

    figures.update(
        ours_calls_per_s=round(ours_best, 1),
        raw_calls_per_s=round(raw_best, 1),
        litellm_calls_per_s=round(litellm_rate, 1),
        ratio_vs_raw=round(ours_best / raw_best, 3),
        ratio_vs_litellm=round(ours_best / litellm_rate, 2) if litellm_rate else None,
        raw_cpu_ms_per_call=round(1000 * raw_cpu / len(seq_rows), 3),
        ours_cpu_ms_per_call=round(1000 * ours_cpu / len(seq_rows), 3),
        overhead_ms_per_call=round(1000 * (ours_cpu - raw_cpu) / len(seq_rows), 3),
        import_s=_import_seconds(),
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
