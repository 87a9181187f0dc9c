"""The ``dspex-lab`` command line.

``dspex-lab demo`` is the README's first command: it starts the simulator in
this process, evaluates one program under a handful of configurations on a
built-in dataset and prints accuracy, cost and latency, with no network and no
API key. ``dspex-lab sim`` serves the simulator for other processes;
``dspex-lab sql``, ``runs`` and ``export`` read the store (also while a
notebook is writing it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["DEMO_CONFIGS", "main", "run_demo"]

DEMO_CONFIGS: list[dict[str, Any]] = [
    {"model": "sim/tiny", "adapter": "chat", "module": "predict", "temperature": 0.0},
    {"model": "sim/small", "adapter": "chat", "module": "predict", "temperature": 0.0},
    {"model": "sim/small", "adapter": "json", "module": "cot", "temperature": 0.0},
    {"model": "sim/medium", "adapter": "markdown", "module": "cot", "temperature": 0.7},
    {"model": "sim/medium", "adapter": "chat", "module": "pot", "temperature": 0.0},
    {"model": "sim/large", "adapter": "chat", "module": "predict", "temperature": 0.0},
    {"model": "sim/large", "adapter": "json", "module": "cot", "temperature": 0.0},
]


def _fmt_money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.6f}"


def run_demo(*, dataset: str = "sim-math", n: int = 100, speed: float = 0.02,
             demos: int = 3, out: Any = None) -> list[dict[str, Any]]:
    """Evaluate :data:`DEMO_CONFIGS` on the simulator; print and return a summary table."""
    import dspex_lab as dx
    from dspex_lab import sim

    stream = out or sys.stdout
    data = dx.datasets.load(dataset)
    rows = data.val[:n]
    program = dx.Predict(data.signature)
    results: list[dict[str, Any]] = []
    with sim.start(speed=speed) as server:
        print(f"simulator at {server.base_url} (speed x{speed}: latencies shown are the "
              f"simulated ones)", file=stream)
        print(f"dataset {dataset}: {len(rows)} validation examples, metric "
              f"{data.default_metric}, {demos} demos\n", file=stream)
        header = (f"{'model':<11} {'adapter':<9} {'module':<8} {'temp':>4}  {'accuracy':>8}  "
                  f"{'$/example':>11}  {'latency p50':>11}  {'failed':>6}")
        print(header, file=stream)
        print("-" * len(header), file=stream)
        for config in DEMO_CONFIGS:
            configured = program.with_config({**config, "demos": data.demos(demos)})
            result = dx.evaluate(configured, rows, data.default_metric, progress=False)
            row = {**config, "accuracy": result.score, "cost_per_example":
                   result.cost_per_example, "latency_p50_s": result.latency_p50_s,
                   "failed": result.n_failed}
            results.append(row)
            print(f"{config['model']:<11} {config['adapter']:<9} {config['module']:<8} "
                  f"{config['temperature']:>4.1f}  {result.score:>8.3f}  "
                  f"{_fmt_money(result.cost_per_example):>11}  "
                  f"{result.latency_p50_s * 1000:>8.0f} ms  {result.n_failed:>6}",
                  file=stream)
    return results


def _cmd_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    run_demo(dataset=args.dataset, n=args.n, speed=args.speed, demos=args.demos)
    print(f"\ndone in {time.perf_counter() - started:.1f} s", file=sys.stdout)
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    from dspex_lab import sim

    sim.serve_forever(host=args.host, port=args.port, speed=args.speed, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dspex-lab", description="Build LLM programs and tune them on accuracy, cost and "
        "latency. Every command runs offline against the built-in simulator or a store file.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="evaluate a program under several configurations "
                                       "on the built-in simulator (offline)")
    demo.add_argument("--dataset", default="sim-math",
                      help="built-in dataset (sim-math, sim-lookup, sim-sentiment)")
    demo.add_argument("--n", type=int, default=100, help="validation examples per config")
    demo.add_argument("--demos", type=int, default=3, help="few-shot demos per config")
    demo.add_argument("--speed", type=float, default=0.02,
                      help="simulator time scale: 1.0 = real simulated latency, 0 = none")
    demo.set_defaults(func=_cmd_demo)

    simp = sub.add_parser("sim", help="serve the OpenAI-compatible simulator on loopback")
    simp.add_argument("--port", type=int, default=8765)
    simp.add_argument("--host", default="127.0.0.1")
    simp.add_argument("--speed", type=float, default=1.0)
    simp.add_argument("--seed", type=int, default=0)
    simp.set_defaults(func=_cmd_sim)

    from dspex_lab.store._cli import add_subcommands

    add_subcommands(sub)
    for name in ("sql", "runs", "export"):
        sub.choices[name].set_defaults(func=_cmd_store)
    return parser


def _cmd_store(args: argparse.Namespace) -> int:
    from dspex_lab.store._cli import run_command

    return run_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dspex_lab.errors import DspexError

    try:
        return int(args.func(args))
    except DspexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
