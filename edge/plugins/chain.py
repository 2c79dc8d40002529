"""The plugins of one request path, ordered per phase: what the proxy runs per request.

A separate module from the plugin contract (``edge.plugins.base``) so that it can be
compiled (``edge.native``): the proxy reads these lists on every request, and a
compiled class gives it their fields without an attribute lookup by name.
"""

from __future__ import annotations

import inspect

from edge.plugins.base import PHASES, Handler, Plugin, overrides


class PluginChain:
    """Plugins of one request path, ordered per phase by descending priority.

    Built once per (route, consumer) pair at compile time or on first use; the hot
    path only iterates the phase lists.
    """

    def __init__(self, plugins: list[tuple[Plugin, int]]) -> None:
        # (plugin, effective priority); ties broken by name so order is deterministic
        ordered = sorted(plugins, key=lambda pp: (-pp[1], pp[0].name))
        self.plugins: list[Plugin] = [p for p, _ in ordered]
        self.has_auth = any(p.is_auth for p in self.plugins)
        # for a route chain with a consumer's plugins merged in: the rewrite handlers of
        # the plugins that joined with the consumer (run once the consumer is known)
        self.joined_rewrite: list[Handler] = []
        phases: dict[str, list[Handler]] = {}
        for phase in PHASES:
            hs: list[Handler] = []
            for p in self.plugins:
                if hasattr(type(p), phase) and overrides(p, phase):
                    fn = getattr(p, phase)
                    hs.append((p, inspect.iscoroutinefunction(fn), fn))
            phases[phase] = hs
        self.rewrite = phases["rewrite"]
        self.access = phases["access"]
        self.request_body_filter = phases["request_body_filter"]
        self.header_filter = phases["header_filter"]
        self.body_filter = phases["body_filter"]
        self.log = phases["log"]
        # the reactor relays a response itself only when no filter has to be awaited
        self.sync_response = not any(h[1] for h in self.header_filter + self.body_filter)
        # what the hot path checks before looking at the phase lists one by one
        self.runs_before = bool(self.rewrite or self.access)
        # a request handler that may change the request without saying so
        self.edits_unmarked = any(not h[0].marks_request_edits for h in self.rewrite + self.access)
        self.filters = bool(self.header_filter or self.body_filter)

    def __repr__(self) -> str:
        return f"PluginChain({[p.name for p in self.plugins]})"
