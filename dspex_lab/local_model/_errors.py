"""The two ways the local model fails: not installed, or the server would not run.

``LocalModelNotInstalled`` is a configuration problem found before anything
starts (like a missing API key), so it derives from ``ConfigurationError``
and carries the exact install command. ``LocalModelError`` is an
``LMError``: the model could not be reached because its server could not be
started or kept running; it is not retryable (a retry would only start the
same failing server again), and its message points at the server's log.
"""

from __future__ import annotations

from dspex_lab.errors import ConfigurationError, LMError

__all__ = ["LocalModelError", "LocalModelNotInstalled"]


class LocalModelNotInstalled(ConfigurationError):
    """A package the local model needs is missing; the message has the install command."""

    kind = "local_model_missing"

    def __init__(self, package: str, install_command: str, detail: str = "") -> None:
        super().__init__(
            f"The local model needs the package {package!r}, which is not installed"
            f"{' (' + detail + ')' if detail else ''}. Install it with: {install_command}")
        self.package = package
        self.install_command = install_command


class LocalModelError(LMError):
    """The local model server could not be started, or stopped answering."""

    kind = "local_model"
