"""The ``dspex-lab`` command line.

``dspex-lab demo`` is the README's first command: it starts the simulator in
this process and runs a multi-objective optimization of a program on a
built-in dataset (see :mod:`dspex_lab._demo`), recording into the store and
writing the Pareto chart, with no network and no API key. ``dspex-lab sim``
serves the simulator for other processes; ``dspex-lab sql``, ``runs`` and
``export`` read the store (also while a notebook is writing it); ``dspex-lab
serve`` serves the dashboard over a store; ``dspex-lab local-model`` starts, stops
and inspects the real local model. Each subcommand's module imports nothing heavy
until it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

def _cmd_demo(args: argparse.Namespace) -> int:
    from dspex_lab._demo import main_demo

    return main_demo(args.dataset, args.n, args.trials, args.speed, args.chart)


def _cmd_sim(args: argparse.Namespace) -> int:
    from dspex_lab import sim

    sim.serve_forever(host=args.host, port=args.port, speed=args.speed, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dspex-lab", description="Build LLM programs and tune them on accuracy, cost and "
        "latency. Every command runs offline against the built-in simulator or a store file.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="optimize a program for accuracy, cost and latency "
                                       "on the built-in simulator (offline)")
    demo.add_argument("--dataset", default="sim-math",
                      help="built-in dataset (sim-math, sim-lookup, sim-sentiment)")
    demo.add_argument("--n", type=int, default=60, help="validation examples per trial")
    demo.add_argument("--trials", type=int, default=24, help="trials of the optimization")
    demo.add_argument("--chart", default="pareto.png",
                      help="where to write the Pareto chart (.png, .svg or .html; '' for none)")
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

    from dspex_lab.app._cli import add_subcommands as add_serve
    from dspex_lab.local_model._cli import add_subcommands as add_local_model

    add_serve(sub)
    add_local_model(sub)
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
