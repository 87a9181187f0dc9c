"""Who may open a served dashboard: the bind policy and Panel's login options.

The store holds every prompt, reply, configuration and dollar of a team's
experiments, so the policy is simple:

- **Loopback** (``127.0.0.1``, ``::1``, ``localhost``): no login needed; only this
  machine can connect (reach it from elsewhere through an SSH tunnel).
- **Any other address**: refused unless an :class:`AuthPolicy` is given — Panel's
  basic auth (a login page checking users and passwords, then a signed cookie) or
  OAuth (GitHub, Google, Azure, GitLab, Okta, Auth0, generic OIDC, through
  Panel's providers). There is deliberately no "serve it open anyway" switch: put
  a reverse proxy that authenticates in front of a loopback server instead.

Everyone who logs in gets the **viewer** role: the dashboard has no action that
writes, and its SQL console runs every statement through the store's read-only
guard on a read-only attachment of the file, so a viewer cannot change data.

Secrets (passwords, OAuth secrets, the cookie secret) live in the policy only to
be handed to Panel: they never appear in its ``repr``, in messages, or in what
the CLI prints.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspex_lab.errors import ConfigurationError

__all__ = ["BASIC_AUTH_ENV", "COOKIE_SECRET_ENV", "AuthPolicy", "UnsafeBindError",
           "check_bind", "is_loopback"]

BASIC_AUTH_ENV = "DSPEX_APP_BASIC_AUTH"
"""``user:password`` of the one basic-auth user (several users: a JSON file)."""
BASIC_AUTH_FILE_ENV = "DSPEX_APP_BASIC_AUTH_FILE"
COOKIE_SECRET_ENV = "DSPEX_APP_COOKIE_SECRET"
"""Signs the login cookie; random per start when unset (logins then end with the server)."""
_OAUTH_ENV = {"key": "PANEL_OAUTH_KEY", "secret": "PANEL_OAUTH_SECRET",
              "redirect_uri": "PANEL_OAUTH_REDIRECT_URI",
              "encryption_key": "PANEL_OAUTH_ENCRYPTION"}

HOW_TO_CONFIGURE = (
    "Configure a login, one of:\n"
    "  * basic auth: --basic-auth-file users.json (a JSON object {\"user\": \"password\"}), "
    f"or the environment variable {BASIC_AUTH_ENV}=user:password "
    "(or --basic-auth user:password, visible to other users of this machine in its process "
    "list);\n"
    "  * OAuth: --oauth-provider github (or google, azure, gitlab, okta, auth0, generic) "
    f"with {_OAUTH_ENV['key']}, {_OAUTH_ENV['secret']} and {_OAUTH_ENV['redirect_uri']} "
    "set in the environment;\n"
    "  * from Python: dspex_lab.app.serve(..., auth=AuthPolicy.basic({\"user\": "
    "\"password\"})) or AuthPolicy.oauth(...).\n"
    "Or keep the default --host 127.0.0.1 and reach it through an SSH tunnel "
    "(ssh -L 5006:127.0.0.1:5006 this-host). Serve over TLS (--ssl-certfile, "
    "--ssl-keyfile) or behind an HTTPS proxy, or passwords cross the network in clear.")


class UnsafeBindError(ConfigurationError):
    """Serving on a non-loopback address without a login was refused."""

    kind = "unsafe_bind"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    IP literals are checked directly; a name counts only if every address it resolves
    to is a loopback address. ``""``, ``0.0.0.0`` and ``::`` (every interface) are not."""
    name = host.strip().strip("[]")
    if not name:
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


@dataclass(frozen=True, repr=False)
class AuthPolicy:
    """How users log in to a served dashboard; hand it to :func:`dspex_lab.app.serve`.

    Build one with :meth:`basic`, :meth:`oauth` or :meth:`from_env`. Every user who
    logs in is a viewer (see the module docstring)."""

    kind: str
    users: Mapping[str, str] = field(default_factory=dict)
    oauth_provider: str | None = None
    oauth_key: str | None = None
    oauth_secret: str | None = None
    oauth_redirect_uri: str | None = None
    oauth_extra_params: Mapping[str, str] = field(default_factory=dict)
    oauth_encryption_key: str | None = None
    cookie_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    role: str = "viewer"

    def __post_init__(self) -> None:
        if self.kind not in ("basic", "oauth"):
            raise ConfigurationError(f"AuthPolicy kind must be 'basic' or 'oauth', not "
                                     f"{self.kind!r}")
        if self.role != "viewer":
            raise ConfigurationError(f"the only role is 'viewer' (read-only), not "
                                     f"{self.role!r}")
        if len(self.cookie_secret) < 16:
            raise ConfigurationError(f"the cookie secret ({COOKIE_SECRET_ENV} or "
                                     f"--cookie-secret) must be at least 16 characters")

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def basic(cls, users: Mapping[str, str] | str, *, cookie_secret: str | None = None
              ) -> AuthPolicy:
        """Basic auth for ``users``: a mapping user -> password, or one ``"user:password"``."""
        parsed = _parse_users(users) if isinstance(users, str) else dict(users)
        if not parsed:
            raise ConfigurationError("basic auth needs at least one user:password")
        for user, password in parsed.items():
            if not isinstance(user, str) or not user.strip() or ":" in user:
                raise ConfigurationError(f"basic auth: invalid user name {user!r} (a "
                                         f"non-empty name without ':')")
            if not isinstance(password, str) or not password:
                raise ConfigurationError(f"basic auth: user {user!r} has an empty password")
        return cls("basic", users=parsed, cookie_secret=_secret(cookie_secret))

    @classmethod
    def basic_from_file(cls, path: str | os.PathLike[str], *,
                        cookie_secret: str | None = None) -> AuthPolicy:
        """Basic auth for the users of a JSON file ``{"user": "password", ...}``."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"basic auth file {p}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigurationError(f"basic auth file {p} is not JSON: {exc}") from None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigurationError(f"basic auth file {p} must hold a JSON object mapping "
                                     f"user names to passwords, e.g. {{\"ana\": \"...\"}}")
        return cls.basic(data, cookie_secret=cookie_secret)

    @classmethod
    def oauth(cls, provider: str, *, key: str | None = None, secret: str | None = None,
              redirect_uri: str | None = None, extra_params: Mapping[str, str] | None = None,
              encryption_key: str | None = None, cookie_secret: str | None = None
              ) -> AuthPolicy:
        """OAuth through Panel's ``provider`` (github, google, azure, gitlab, okta, auth0,
        generic, ...). ``key``/``secret``/``redirect_uri``/``encryption_key`` default to
        ``PANEL_OAUTH_KEY``, ``PANEL_OAUTH_SECRET``, ``PANEL_OAUTH_REDIRECT_URI``,
        ``PANEL_OAUTH_ENCRYPTION``."""
        from panel.auth import AUTH_PROVIDERS

        name = provider.strip().lower()
        if name not in AUTH_PROVIDERS:
            raise ConfigurationError(f"unknown OAuth provider {provider!r}; Panel knows "
                                     f"{', '.join(sorted(AUTH_PROVIDERS))}")
        key = key or os.environ.get(_OAUTH_ENV["key"])
        secret = secret or os.environ.get(_OAUTH_ENV["secret"])
        if not key or not secret:
            raise ConfigurationError(
                f"OAuth with {name} needs the application's client id and secret: set "
                f"{_OAUTH_ENV['key']} and {_OAUTH_ENV['secret']} (and "
                f"{_OAUTH_ENV['redirect_uri']}, the callback URL registered with {name})")
        return cls("oauth", oauth_provider=name, oauth_key=key, oauth_secret=secret,
                   oauth_redirect_uri=redirect_uri or os.environ.get(
                       _OAUTH_ENV["redirect_uri"]),
                   oauth_extra_params=dict(extra_params or {}),
                   oauth_encryption_key=encryption_key or os.environ.get(
                       _OAUTH_ENV["encryption_key"]),
                   cookie_secret=_secret(cookie_secret))

    @classmethod
    def from_env(cls) -> AuthPolicy | None:
        """Basic auth from ``DSPEX_APP_BASIC_AUTH`` or ``DSPEX_APP_BASIC_AUTH_FILE``, if
        either is set; else None."""
        if os.environ.get(BASIC_AUTH_ENV):
            return cls.basic(os.environ[BASIC_AUTH_ENV])
        if os.environ.get(BASIC_AUTH_FILE_ENV):
            return cls.basic_from_file(os.environ[BASIC_AUTH_FILE_ENV])
        return None

    # -- use --------------------------------------------------------------------------
    def panel_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``panel.serve`` that switch this login on."""
        out: dict[str, Any] = {"cookie_secret": self.cookie_secret}
        if self.kind == "basic":
            out["basic_auth"] = dict(self.users)
            return out
        out.update(oauth_provider=self.oauth_provider, oauth_key=self.oauth_key,
                   oauth_secret=self.oauth_secret)
        if self.oauth_redirect_uri:
            out["oauth_redirect_uri"] = self.oauth_redirect_uri
        if self.oauth_extra_params:
            out["oauth_extra_params"] = dict(self.oauth_extra_params)
        if self.oauth_encryption_key:
            out["oauth_encryption_key"] = self.oauth_encryption_key
        return out

    def describe(self) -> str:
        """What the policy is, without a secret (for the CLI and logs)."""
        if self.kind == "basic":
            names = ", ".join(sorted(self.users))
            return f"basic auth ({len(self.users)} user{'s' * (len(self.users) != 1)}: " \
                   f"{names}), role {self.role}"
        return f"OAuth via {self.oauth_provider}, role {self.role}"

    def __repr__(self) -> str:
        return f"AuthPolicy({self.describe()})"


def check_bind(host: str, auth: AuthPolicy | None) -> None:
    """Refuse (:class:`UnsafeBindError`) to serve on a non-loopback ``host`` without a
    login; the message says how to configure one."""
    if auth is None and not is_loopback(host):
        shown = host or "every interface"
        raise UnsafeBindError(
            f"refusing to serve the dashboard on {shown} without a login: anyone who can "
            f"reach that address could read every prompt, reply and cost in the store.\n"
            + HOW_TO_CONFIGURE)


def _parse_users(text: str) -> dict[str, str]:
    """``user:password`` (the password may contain ':'; for several users, a file)."""
    user, sep, password = text.partition(":")
    if not sep:
        raise ConfigurationError(
            "basic auth expects user:password (for several users, a JSON file "
            "{\"user\": \"password\"} given with --basic-auth-file); the value given has no ':'")
    return {user.strip(): password}


def _secret(cookie_secret: str | None) -> str:
    """The cookie secret given, else ``$DSPEX_APP_COOKIE_SECRET``, else a random one."""
    return cookie_secret or os.environ.get(COOKIE_SECRET_ENV) or secrets.token_urlsafe(32)
