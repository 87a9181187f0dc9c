"""``python -m dspex_lab.sim``: the process behind ``start(process=True)`` and the CLI."""

from __future__ import annotations

import argparse

import orjson

from dspex_lab.sim._faults import Faults
from dspex_lab.sim._server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dspex_lab.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", default="{}", help="JSON object of Faults fields")
    parser.add_argument("--fixed-latency-ms", type=float, default=None)
    args = parser.parse_args(argv)
    serve_forever(args.host, args.port, args.speed, args.seed,
                  faults=Faults.from_dict(orjson.loads(args.faults)),
                  fixed_latency_ms=args.fixed_latency_ms)


if __name__ == "__main__":
    main()
