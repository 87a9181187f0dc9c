"""What ``dspex-lab sql``, ``dspex-lab runs`` and ``dspex-lab export`` call.

Every command reads through :class:`StoreReader`, so it works on a file that a
notebook is recording into (it waits for the current flush, at most
``--timeout`` seconds). ``python -m dspex_lab.store._cli sql "select ..."``
runs the same code without the main CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dspex_lab.store._errors import StoreError
from dspex_lab.store._query import StoreReader

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_subcommands", "export", "main", "run_command", "runs", "sql"]

Format = Literal["table", "csv", "json"]
_MAX_TABLE_ROWS = 1000


def render(df: pd.DataFrame, fmt: Format = "table") -> str:
    """A DataFrame as text: an aligned table, CSV or JSON records."""
    if fmt == "csv":
        return str(df.to_csv(index=False))
    if fmt == "json":
        return str(df.to_json(orient="records", date_format="iso"))
    if fmt != "table":
        raise ValueError(f"format must be table, csv or json, not {fmt!r}")
    if df.empty:
        return "(no rows)" if len(df.columns) else "(no result)"
    shown = df.head(_MAX_TABLE_ROWS)
    text = str(shown.to_string(index=False, max_colwidth=60))
    if len(df) > len(shown):
        text += f"\n... {len(df) - len(shown)} more rows (use --format csv for all)"
    return text


def sql(query: str, params: Sequence[Any] | Mapping[str, Any] | None = None, *,
        path: str | os.PathLike[str] | None = None, fmt: Format = "table",
        timeout: float = 10.0) -> str:
    """Run one read-only query on the store file; the result rendered as text."""
    with StoreReader(path, timeout=timeout) as reader:
        return render(reader.sql(query, params), fmt)


def runs(*, path: str | os.PathLike[str] | None = None, fmt: Format = "table",
         timeout: float = 10.0) -> str:
    """The runs table with trial counts and spend, newest first, as text."""
    with StoreReader(path, timeout=timeout) as reader:
        return render(reader.runs(), fmt)


def export(out_dir: str | os.PathLike[str], fmt: Literal["parquet", "csv"] = "parquet",
           tables: Sequence[str] | None = None, *,
           path: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> list[Path]:
    """Write the store's tables to ``out_dir`` as Parquet or CSV files."""
    with StoreReader(path, timeout=timeout) as reader:
        return reader.export(out_dir, fmt, tables)


def _param(text: str) -> Any:
    """A ``--param`` value: JSON when it parses (``5``, ``0.1``, ``null``, ``"x"``), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def add_subcommands(sub: Any) -> None:
    """Add ``sql``, ``runs`` and ``export`` to an argparse subparsers object."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None,
                        help="the DuckDB file (default: $DSPEX_STORE or ./dspex.duckdb)")
    common.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait while another process writes (default 10)")
    p = sub.add_parser("sql", parents=[common], help="run a read-only SQL query on the store")
    p.add_argument("query", help='e.g. "select model, count(*) from executions group by all"')
    p.add_argument("-p", "--param", action="append", default=[], metavar="VALUE",
                   help="a bound parameter for each ? in order (JSON if it parses)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p = sub.add_parser("runs", parents=[common], help="list optimization runs")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p = sub.add_parser("export", parents=[common], help="export tables as Parquet or CSV")
    p.add_argument("out_dir", nargs="?", default="dspex-export")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--tables", nargs="*", default=None, help="default: all tables")


def run_command(args: argparse.Namespace) -> int:
    """Execute a parsed ``sql`` / ``runs`` / ``export`` command; prints, returns the exit code."""
    try:
        if args.command == "sql":
            params = [_param(p) for p in args.param] or None
            print(sql(args.query, params, path=args.store, fmt=args.format,
                      timeout=args.timeout))
        elif args.command == "runs":
            print(runs(path=args.store, fmt=args.format, timeout=args.timeout))
        elif args.command == "export":
            for written in export(args.out_dir, args.format, args.tables, path=args.store,
                                  timeout=max(args.timeout, 60.0)):
                print(written)
        else:
            raise ValueError(f"unknown command {args.command!r}")
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dspex_lab.store._cli",
                                     description="Query a dspex_lab store file.")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
