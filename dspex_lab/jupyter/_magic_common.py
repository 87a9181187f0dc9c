"""What every ``%dspex`` subcommand shares: the notebook's namespace, display, failure.

User mistakes end in :func:`fail`, which raises IPython's ``UsageError``: IPython
prints it as one line (``UsageError: ...``) without a traceback, and the cell still
counts as failed, so "Run all" stops there. Bugs are left to raise normally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from IPython.core.error import UsageError

__all__ = ["Notebook", "display", "fail", "show"]


@dataclass
class Notebook:
    """The variables a magic may read and bind.

    ``local_ns`` is set when a magic runs inside a function (IPython passes the
    caller's locals); reads look there first, bindings go to the user namespace,
    where the next cell finds them.
    """

    user_ns: dict[str, Any]
    local_ns: Mapping[str, Any] | None = None

    def namespaces(self) -> list[Mapping[str, Any]]:
        if self.local_ns is None or self.local_ns is self.user_ns:
            return [self.user_ns]
        return [self.local_ns, self.user_ns]

    def get(self, name: str) -> tuple[bool, Any]:
        """(found, value) of a variable."""
        for ns in self.namespaces():
            if name in ns:
                return True, ns[name]
        return False, None

    def bind(self, name: str, value: Any) -> None:
        self.user_ns[name] = value


def display(obj: Any, *, raw: bool = False) -> None:
    """IPython's ``display`` (unannotated there), typed for our callers."""
    from IPython import display as ipd

    show_any = cast(Callable[..., object], ipd.display)
    show_any(obj, raw=raw)


def show(text: str, html: str | None = None) -> None:
    """Display text (and HTML where the front end renders it) as one output."""
    bundle = {"text/plain": text}
    if html is not None:
        bundle["text/html"] = html
    display(bundle, raw=True)


def fail(message: str) -> NoReturn:
    """End the magic with a one-line message for the user (no traceback)."""
    raise UsageError(message)
