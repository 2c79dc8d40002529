"""What every auth plugin does once it has identified (or failed to identify) a consumer.

- ``attach_consumer`` records the consumer on the request and sets the upstream headers
  ``X-Consumer-Username``, ``X-Credential-Identifier`` and ``X-Consumer-Custom-ID``
  (client-sent copies are removed first, so a client cannot impersonate a consumer to
  the upstream).
- ``credential_id`` names the credential that matched. APISIX 3.x sends the id of a
  separate credential object; edge keeps credentials inside the consumer, so the id is
  ``<username>/<plugin name>`` (unique: a consumer has one credential per plugin). It is
  built when the consumer index is compiled, not per request. The anonymous consumer
  authenticated nothing, so it gets no credential identifier.
- ``Anonymous`` resolves ``anonymous_consumer`` at compile time; a failed
  authentication then attaches that consumer instead of answering 401.
- ``strip_query_arg`` / ``strip_cookie`` implement ``hide_credentials``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from edge.context import Request, Response
from edge.plugins import _reply
from edge.plugins.base import CompileEnv, PluginConfigError

CONSUMER_HEADERS = frozenset(
    {"x-consumer-username", "x-credential-identifier", "x-consumer-custom-id"}
)


def credential_id(consumer: Any, plugin: str) -> str:
    return f"{getattr(consumer, 'username', '')}/{plugin}"


def attach_consumer(req: Request, consumer: Any, credential_id: str | None = None) -> None:
    req.consumer = consumer
    h = req.headers
    h.remove_many(CONSUMER_HEADERS)
    username = getattr(consumer, "username", None)
    if username:
        h.add("X-Consumer-Username", str(username))
    cred = credential_id or getattr(consumer, "credential_id", None)
    if cred:
        h.add("X-Credential-Identifier", str(cred))
    custom_id = getattr(consumer, "custom_id", None)
    if custom_id:
        h.add("X-Consumer-Custom-ID", str(custom_id))


class Anonymous:
    """``anonymous_consumer``: the consumer used when authentication fails."""

    __slots__ = ("name", "consumer")

    def __init__(self, name: str | None, env: CompileEnv) -> None:
        self.name = name
        self.consumer = env.consumers.get(name) if name else None

    def fallback(self, req: Request, failure: Response) -> Response | None:
        """Attach the anonymous consumer, or return ``failure`` when none is configured."""
        if self.name is None:
            return failure
        if self.consumer is None:
            # configured but unknown: APISIX's message; never fall open
            return _reply.message(401, "Invalid user authorization")
        attach_consumer(req, self.consumer)
        return None


def strip_query_arg(req: Request, name: str) -> None:
    if not req.query:
        return
    pairs = parse_qsl(req.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k != name]
    if len(kept) != len(pairs):
        req.set_uri(req.path + ("?" + urlencode(kept) if kept else ""))


def strip_cookie(req: Request, name: str) -> None:
    values = req.headers.get_all("cookie")
    if not values:
        return
    parts = []
    for raw in values:
        for part in raw.split(";"):
            p = part.strip()
            if p and p.partition("=")[0] != name:
                parts.append(p)
    req.headers.remove("cookie")
    if parts:
        req.headers.add("Cookie", "; ".join(parts))
    req._cookies = None


class ConsumerProblems(PluginConfigError):
    """Several consumers' credentials are bad; ``problems`` holds ``(field, message)`` each.

    As a ``PluginConfigError`` it carries the first problem's field, or, with several, no
    field and every problem in the message, so a compiler that knows only the single
    form still reports them all.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        if len(problems) == 1:
            super().__init__(*problems[0])
        else:
            super().__init__("", "; ".join(f"{f}: {m}" if f else m for f, m in problems))
        self.problems = problems


def index_all(plugin: str, creds: list[tuple[Any, Any]], add: Callable[[Any, Any], None]) -> None:
    """Run ``add(consumer, conf)`` for every credential, reporting every bad one at once.

    Each message names the consumer (the index spans all consumers, so the compiler
    reports it under ``consumers.plugins.<plugin>``).
    """
    problems: list[tuple[str, str]] = []
    for consumer, conf in creds:
        try:
            add(consumer, conf)
        except PluginConfigError as e:
            problems.append((e.field, e.message))
    if problems:
        raise ConsumerProblems(problems)
