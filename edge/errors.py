"""Errors, organised by who is at fault.

Each error that can reach a client carries the HTTP status it maps to, so the
server has exactly one place (``status_for``) that turns a failure into a response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.context import Response


class EdgeError(Exception):
    """Root of every error edge raises on purpose."""

    status: int = 500


# -- the configuration is bad (operator's fault) -------------------------------------


class ConfigError(EdgeError):
    """A configuration (bundle, node file, plugin config) is invalid.

    ``problems`` holds every problem found, each as ``(field_path, message)`` so the
    CLI can print ``FILE: FIELD.PATH: message`` lines.
    """

    def __init__(self, problems: list[tuple[str, str]], file: str = "") -> None:
        self.problems = problems
        self.file = file
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))

    def lines(self) -> list[str]:
        prefix = f"{self.file}: " if self.file else ""
        return [f"{prefix}{p}: {m}" if p else f"{prefix}{m}" for p, m in self.problems]


# -- the client misbehaved (remote's fault) ------------------------------------------


class ClientError(EdgeError):
    """The downstream client sent something we refuse; ``status`` says which 4xx."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


# -- the upstream misbehaved or is unreachable ---------------------------------------


class UpstreamError(EdgeError):
    """Connecting to, or reading from, an upstream failed."""

    status = 502


class UpstreamConnectError(UpstreamError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504


class UpstreamProtocolError(UpstreamError):
    """The upstream sent a malformed or smuggling-shaped response."""

    status = 502


# -- a sandboxed plugin failed -------------------------------------------------------


class PluginError(EdgeError):
    """A plugin failed while handling a request (a WASM trap, a timeout...)."""

    status = 503


class LocalReply(EdgeError):
    """A plugin answered the request while its body was already on the way upstream
    (Envoy allows it until response headers went out): the upstream exchange is
    abandoned and ``response`` (an ``edge.context.Response``) goes to the client."""

    def __init__(self, response: Response) -> None:
        super().__init__("local reply from the request body phase")
        self.response = response
        self.status = int(getattr(response, "status", 500))


def status_for(exc: BaseException) -> int:
    """The one mapping from a failure to the status the client sees."""
    if isinstance(exc, EdgeError):
        return exc.status
    return 500
