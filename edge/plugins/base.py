"""The one plugin contract shared by built-in Python plugins and WASM plugins.

A plugin class declares ``name``, ``priority``, a config schema (``Config``, a
msgspec Struct) and handlers for the phases it uses. An instance is built once per
configured occurrence when a snapshot is compiled: ``__init__`` validates and
pre-compiles everything (regexes, CIDR tables, keys), so handlers never parse or
compile per request.

Phase handlers (define only the ones you use; the chain looks at which methods a
class overrides, once, at compile time):

- ``rewrite(req) -> Response | None``       may end the request with a local response
- ``access(req) -> Response | None``        same
- ``request_body_filter(req, chunk, eof) -> bytes``   request body chunks going upstream
- ``header_filter(req, resp) -> Response | None``     may edit ``resp`` in place
- ``body_filter(req, resp, chunk, eof) -> bytes``     response body chunks going down
- ``log(req, resp) -> None``                runs for every request, also after a local response

``rewrite``, ``access``, ``request_body_filter``, ``header_filter`` and
``body_filter`` may be ``async def`` (a WASM http_call, limit-req's delay); the chain
awaits only those, decided at compile time. ``rewrite`` and ``access`` may also be
sync-first: a plain function that returns an awaitable instead of ``Response | None``
only when it does have to wait (a WASM plugin whose guest made an http_call), so the
common case stays on the reactor's fast path (``edge.reactor``). ``log`` is always
synchronous.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

PHASES = ("rewrite", "access", "request_body_filter", "header_filter", "body_filter", "log")


class CompileEnv:
    """What a plugin may look at while it compiles: the rest of the configuration.

    The snapshot compiler fills it. ``consumer_index(name)`` returns what the auth
    plugin ``name`` built from all consumers with ``Plugin.index_consumers``.
    """

    def __init__(
        self,
        *,
        consumers: dict[str, Any] | None = None,
        upstreams: dict[str, Any] | None = None,
        bundle_dir: str | None = None,
        node_id: str = "",
        shared: dict[str, Any] | None = None,
    ) -> None:
        self.consumers = consumers or {}
        self.upstreams = upstreams or {}
        self.bundle_dir = bundle_dir
        self.node_id = node_id
        # long-lived, per-process objects that survive snapshot swaps (counters, VMs)
        self.shared = shared if shared is not None else {}
        self.consumer_indexes: dict[str, Any] = {}

    def consumer_index(self, plugin_name: str) -> Any:
        return self.consumer_indexes.get(plugin_name)


class Plugin:
    name: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    # the route/service/global config schema; ``None`` means no config accepted but {}
    Config: ClassVar[type[msgspec.Struct] | None] = None
    # auth plugins: the schema of the credential a consumer carries under this name
    ConsumerConfig: ClassVar[type[msgspec.Struct] | None] = None
    # True for auth plugins: after they identify a consumer, its plugins merge in
    is_auth: ClassVar[bool] = False
    # True when the plugin's own code clears ``Request.head_source`` whenever it changes
    # what goes upstream (method, target, headers): running it then leaves an untouched
    # request its forwarded head reused as it is (``edge.upstream.client.forward_head``)
    marks_request_edits: ClassVar[bool] = False
    # phases this instance defines but has nothing to do in, left out of its chains
    # (a WASM plugin whose module lacks the callbacks: edge.wasm.plugin.unchained_phases)
    unchained: frozenset[str] = frozenset()

    def __init__(self, conf: Any, env: CompileEnv) -> None:
        """Pre-compile ``conf`` (already decoded into ``Config``). Raise
        ``PluginConfigError(field, message)`` for anything the schema cannot express."""
        self.conf = conf

    @classmethod
    def index_consumers(cls, creds: list[tuple[Any, Any]], env: CompileEnv) -> Any:
        """Auth plugins: build the lookup table (e.g. key -> consumer) from
        ``(consumer, decoded ConsumerConfig)`` pairs, once per snapshot."""
        return None


class PluginConfigError(ValueError):
    """A plugin config is invalid; ``field`` is the path below the plugin's config."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# A handler bound into a chain: (plugin, is_async, bound method)
Handler = tuple[Plugin, bool, Callable[..., Any]]


def overrides(plugin: Plugin, phase: str) -> bool:
    if phase in plugin.unchained:
        return False
    return getattr(type(plugin), phase, None) is not getattr(Plugin, phase, None)
