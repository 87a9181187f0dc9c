"""``dspex-lab serve``: argument parsing for the dashboard server.

``add_subcommands`` adds ``serve`` to the main CLI's subparsers;
``python -m dspex_lab.app._cli serve ...`` runs the same code without it.
Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_subcommands", "main", "run_serve"]


def add_subcommands(sub: Any) -> None:
    """Add ``serve`` (with ``set_defaults(func=run_serve)``) to an argparse subparsers
    object."""
    p = sub.add_parser(
        "serve", help="serve the dashboard (runs, Pareto fronts, executions, SQL) in a browser",
        description="Serve the dspex_lab dashboard over a store file: runs list, run pages "
        "with the Pareto front, executions browser and a read-only SQL console, refreshed "
        "live while a notebook records into the same file. Binds 127.0.0.1 unless told "
        "otherwise; any other address needs a login.")
    p.add_argument("--store", default=None,
                   help="the DuckDB file (default: $DSPEX_STORE or ./dspex.duckdb)")
    p.add_argument("--port", type=int, default=5006, help="port (default 5006; 0: any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; others need --basic-auth-file, "
                   "$DSPEX_APP_BASIC_AUTH or --oauth-provider)")
    p.add_argument("--run", dest="run_id", default=None, help="open this run's page first")
    p.add_argument("--refresh", type=float, default=2.0,
                   help="seconds between checks for new data (default 2; 0: no live refresh)")
    p.add_argument("--title", default="dspex_lab", help="the page's title")
    p.add_argument("--show", action="store_true", help="open it in a web browser")
    auth = p.add_argument_group("login (required unless --host is a loopback address)")
    auth.add_argument("--basic-auth-file", default=None, metavar="FILE",
                      help='JSON object {"user": "password", ...}')
    auth.add_argument("--basic-auth", default=None, metavar="USER:PASSWORD",
                      help="one user (visible in the process list: prefer "
                      "$DSPEX_APP_BASIC_AUTH or a file)")
    auth.add_argument("--oauth-provider", default=None, metavar="NAME",
                      help="github, google, azure, gitlab, okta, auth0, generic, ... (client "
                      "id and secret from $PANEL_OAUTH_KEY and $PANEL_OAUTH_SECRET)")
    auth.add_argument("--oauth-redirect-uri", default=None, metavar="URL",
                      help="the callback URL registered with the provider "
                      "(default $PANEL_OAUTH_REDIRECT_URI)")
    auth.add_argument("--cookie-secret-file", default=None, metavar="FILE",
                      help="a file holding the secret that signs login cookies (default "
                      "$DSPEX_APP_COOKIE_SECRET, else random: logins end with the server)")
    auth.add_argument("--allow-websocket-origin", action="append", default=[],
                      metavar="HOST:PORT", help="another name the page is opened under "
                      "(a proxy's, a DNS name's); repeatable")
    auth.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate")
    auth.add_argument("--ssl-keyfile", default=None, help="...and this private key")
    p.set_defaults(func=run_serve)


def _policy(args: argparse.Namespace) -> Any:
    """The login the arguments (or the environment) ask for, or None."""
    from dspex_lab.app._auth import AuthPolicy
    from dspex_lab.errors import ConfigurationError

    secret = None
    if args.cookie_secret_file:
        try:
            with open(args.cookie_secret_file, encoding="utf-8") as f:
                secret = f.read().strip()
        except OSError as exc:
            raise ConfigurationError(f"--cookie-secret-file {args.cookie_secret_file}: "
                                     f"{exc.strerror or exc}") from None
    chosen = [name for name, value in (("--basic-auth-file", args.basic_auth_file),
                                       ("--basic-auth", args.basic_auth),
                                       ("--oauth-provider", args.oauth_provider)) if value]
    if len(chosen) > 1:
        raise ConfigurationError(f"choose one login: {' and '.join(chosen)} were both given")
    if args.basic_auth_file:
        return AuthPolicy.basic_from_file(args.basic_auth_file, cookie_secret=secret)
    if args.basic_auth:
        return AuthPolicy.basic(args.basic_auth, cookie_secret=secret)
    if args.oauth_provider:
        return AuthPolicy.oauth(args.oauth_provider, redirect_uri=args.oauth_redirect_uri,
                                cookie_secret=secret)
    policy = AuthPolicy.from_env()
    if policy is not None and secret is not None:
        policy = AuthPolicy.basic(dict(policy.users), cookie_secret=secret)
    return policy


def run_serve(args: argparse.Namespace) -> int:
    """Execute a parsed ``serve`` command; returns the exit code (2: refused)."""
    from dspex_lab.errors import DspexError

    try:
        from dspex_lab.app._serve import serve

        serve(args.store, port=args.port, host=args.host, auth=_policy(args), show=args.show,
              run_id=args.run_id, refresh_s=args.refresh, title=args.title,
              websocket_origin=args.allow_websocket_origin or None,
              ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    except DspexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dspex_lab.app._cli",
                                     description="Serve the dspex_lab dashboard.")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
