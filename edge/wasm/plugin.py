"""WASM plugins as ordinary plugins of the chain (edge/plugins/base.py).

Phases, per request, for a plugin configured on a route/service/global rule:

- ``access``: create the HTTP context (``proxy_on_context_create``), then
  ``proxy_on_request_headers``. A request body the proxy buffers before going
  upstream anyway (Content-Length up to ``BUFFER_BODY_BELOW``) goes to
  ``proxy_on_request_body`` whole here with end_of_stream=true (``max_body_bytes``,
  413 beyond), so a local response still answers the request. http_calls the guest
  made run here, the request paused until every ``proxy_on_http_call_response`` has run.
  ``access`` is sync-first (the chain's contract, edge/plugins/base.py): it answers
  directly, and returns a coroutine to await only when calls or a body read must wait.
- ``request_body_filter``: any other body (chunked, or larger) chunk by chunk as it
  goes upstream; ``Pause`` on a non-final chunk buffers (the guest is called again
  with the whole buffer) until it continues or end of stream, 413 past
  ``max_body_bytes``. A local response there aborts the request (logged): the
  upstream request has started.
- ``header_filter``: ``proxy_on_response_headers`` (``:status`` and headers editable).
- ``body_filter``: ``proxy_on_response_body`` chunk by chunk; ``Pause`` buffers until
  end of stream (or ``max_body_bytes``, then the buffer is flushed).
- ``log``: ``proxy_on_done`` -> ``proxy_on_log`` -> ``proxy_on_delete``; done sooner,
  in the call of the stream's last headers callback, when the module has no callback
  left for the stream (``stream_ends``), and a module without request callbacks or
  ``on_log`` gets its context with the response headers (``lazy_context``).

A local response (``proxy_send_local_response``) from the request phases or the
response headers ends the request with it. A ``GuestTrap`` applies the failure
policy to that request: ``fail_closed`` answers 503 ``{"error_msg": ...}`` (or
aborts a response already started), ``fail_open`` skips the plugin for the rest of
the request. See docs/wasm.md for the root-only rule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine
from typing import Any, Final

from edge.context import Request, Response, json_response
from edge.errors import ClientError, LocalReply, PluginError
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError
from edge.proxy import BUFFER_BODY_BELOW
from edge.wasm import driver
from edge.wasm.abi import Action
from edge.wasm.context import PendingCall, StreamState
from edge.wasm.driver import CREATE, END, ENDED, REQUEST, RESPONSE
from edge.wasm.engine import ModuleError
from edge.wasm.fastcall import GuestTrap
from edge.wasm.runtime import PluginRuntime
from edge.wasm.vm import PluginVM, RootState, VmStartError

log = logging.getLogger("edge.wasm")

_CONTINUE: Final = int(Action.CONTINUE)  # a plain int: an IntEnum compare costs more
# where ``_access_wait`` takes over from ``access``
# steps of ``access`` (where its coroutine goes on from) and answers of ``_body_step``
_SETTLE_HEADERS: Final = 0
_READ_BODY: Final = 1
_SETTLE_BODY: Final = 2
_CALL_BODY: Final = 3
_DONE: Final = 4
FLUSH_EVERY: Final = 256  # calls between moving local call counters to shared metrics
_CONF_KEYS = frozenset({"conf", "root_id", "root_only"})


def encode_conf(conf: Any) -> bytes:
    """``conf`` as proxy_on_configure reads it: strings raw, objects as JSON."""
    if conf is None:
        return b""
    if isinstance(conf, str):
        return conf.encode()
    if isinstance(conf, bytes):
        return conf
    return json.dumps(conf, separators=(",", ":"), sort_keys=True).encode()


def start_error_message(e: BaseException, logs: list[str] | None = None) -> str:
    if isinstance(e, VmStartError):
        lines = e.logs
        msg = e.message
    elif isinstance(e, GuestTrap):
        lines = logs or []
        msg = f"the module trapped while starting ({e.kind}): {e.message.splitlines()[0]}"
    else:
        lines = []
        msg = str(e)
    if lines:
        msg += "; module log: " + " | ".join(lines[-10:])
    return msg


class WasmPlugin(Plugin):
    """One configured occurrence of a WASM plugin (one root context): the chain's
    plugin. Its phases are those of its ``WasmFilter``."""

    name = ""
    priority = 0
    # every change to the request goes through its header map or ``_body_end``
    marks_request_edits = True

    def __init__(
        self,
        name: str,
        priority: int,
        runtime: PluginRuntime,
        key: tuple[str, bytes],
        failure_policy: str,
        max_body_bytes: int,
        exports: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.conf = key[1]
        self.unchained = unchained_phases(exports)
        self.name = name  # type: ignore[misc]
        self.priority = priority  # type: ignore[misc]
        self.rt = runtime
        self.key = key
        self.fail_open = failure_policy == "fail_open"
        f = self.filter = WasmFilter(
            self, name, runtime, key, failure_policy, max_body_bytes, exports
        )
        # the chain binds ``getattr(plugin, phase)``: for the per-request phases, the
        # compiled filter's own methods, whose state is in slots (this class, a Plugin,
        # keeps its attributes in a dict)
        self.access = f.access  # type: ignore[method-assign]
        self.header_filter = f.header_filter  # type: ignore[method-assign]
        self.body_filter = f.body_filter  # type: ignore[method-assign]
        self.log = f.log  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"WasmPlugin({self.name!r}, root_id={self.key[0]!r})"

    # the phases, as the chain finds them on the class (``edge.plugins.base.overrides``)

    def access(self, req: Request) -> Response | Coroutine[Any, Any, Response | None] | None:
        return self.filter.access(req)

    async def request_body_filter(self, req: Request, chunk: bytes, eof: bool) -> bytes:
        return await self.filter.request_body_filter(req, chunk, eof)

    def header_filter(self, req: Request, resp: Response) -> Response | None:
        return self.filter.header_filter(req, resp)

    def body_filter(self, req: Request, resp: Response, chunk: bytes, eof: bool) -> bytes:
        return self.filter.body_filter(req, resp, chunk, eof)

    def log(self, req: Request, resp: Response | None) -> None:
        self.filter.log(req, resp)


class WasmFilter:
    """What a WASM plugin does per request, in a class of its own: a compiled class,
    whose fields the hot path reads from slots (see the module docstring)."""

    def __init__(
        self,
        plugin: Plugin,
        name: str,
        runtime: PluginRuntime,
        key: tuple[str, bytes],
        failure_policy: str,
        max_body_bytes: int,
        exports: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.plugin = plugin  # the chain's entry, to find this filter's handlers
        self.lazy = lazy_context(exports)
        # ``driver.END`` where the stream's last callback may end it in the same call
        # (the headers of a request without a body, of one with a body when the module
        # has no body callback, of the response)
        self.end_request, self.end_request_body, self.end_response = stream_ends(exports)
        self.name = name
        self.rt = runtime
        self.key = key
        self.fail_open = failure_policy == "fail_open"
        self.max_body_bytes = max_body_bytes
        self.slot = f"wasm:{name}:{id(self)}"
        # the VM and root context the last request used, valid while that VM lives
        self._vm: PluginVM | None = None
        self._root: RootState | None = None
        self._seen = False  # this configuration is in ``runtime.http_seen``

    # -- shared steps ----------------------------------------------------------------

    def _failed(self, req: Request, st: StreamState | None, e: GuestTrap) -> Response | None:
        vm = st.vm if st is not None else None
        if e.kind == "unavailable":
            # backing off: refused without running the guest; must not extend the backoff
            self.rt.refused()
        else:
            self.rt.fail(vm, e.kind, e.message)
        if st is not None:
            st.skipped = True
        if self.fail_open:
            return None
        return json_response(503, f"wasm plugin {self.name} failed")

    def _keep(self, req: Request, st: StreamState) -> None:
        """``st`` is this plugin's context for ``req`` (``_state`` finds it)."""
        st.owner = self
        if req.wasm_ctx is None:
            req.wasm_ctx = st
        else:
            req.plugin_ctx[self.slot] = st

    def _state(self, req: Request) -> StreamState | None:
        st = req.wasm_ctx
        if st is not None and st.owner is self:
            return st  # type: ignore[no-any-return]
        return req.plugin_ctx.get(self.slot) if req.plugin_ctx else None

    def _forget(self, req: Request) -> StreamState | None:
        """``_state``, no longer kept."""
        st = req.wasm_ctx
        if st is not None and st.owner is self:
            req.wasm_ctx = None
            return st  # type: ignore[no-any-return]
        return req.plugin_ctx.pop(self.slot, None) if req.plugin_ctx else None

    def _begin(self, req: Request, resp: Response | None = None) -> StreamState | None:
        """The request's HTTP context, after on_context_create and on_request_headers
        (with ``resp``, a module without request callbacks: on_response_headers); None
        when the plugin has none for it (a root-only configuration). ``st.done``: the
        module had no callback left for the stream, which ended in the same call."""
        rt = self.rt
        vm = rt.vm
        if vm is not None and vm is self._vm and not vm.dead:
            # the VM and root context of the previous request: no acquire, no lookups
            root = self._root
            assert root is not None
        else:
            vm = rt.acquire()
            if vm is None:
                raise GuestTrap("unavailable", rt.last_error or "VM is backing off")
            try:
                root = rt.root(vm, self.key)
            except VmStartError as err:
                raise GuestTrap("start_failed", err.message) from None
            self._vm = vm
            self._root = root
        if root.root_only:  # set from ``rt.root_only`` when the root was made, and with it
            return None
        st = vm.new_state(root, req)
        if resp is None:
            eos = 0 if req.chunked or req.content_length else 1
            what = CREATE | REQUEST | (self.end_request if eos else self.end_request_body)
            n = len(req.headers) + 3
        else:
            st.set_response(resp)
            eos = 1 if resp.local else 0
            what = CREATE | RESPONSE | self.end_response
            n = len(resp.headers) + 1
        try:
            action = self._step(st, what, n, eos)
        except GuestTrap as e:
            first = self.key not in rt.http_seen
            if e.callback != "proxy_on_context_create":
                # the headers callback trapped: the context exists and ends with the request
                rt.http_seen.add(self.key)
                self._keep(req, st)
            elif first and e.kind == "unreachable":
                # the SDKs abort (a panic: unreachable) when a root context that
                # declares no HTTP context is asked for one (Rust: "missing
                # ContextType"); Envoy would never ask, so mark the configuration
                # root-only and go on without it. A loop or any other trap is a failure.
                rt.root_only.add(self.key)
                root.root_only = True
                log.warning(
                    "wasm[%s]: no HTTP context for root_id %r; treating it as root-only",
                    self.name,
                    self.key[0],
                )
                rt.fail(vm, "root_only", "on_context_create trapped")
                return None
            raise
        if not self._seen:
            rt.http_seen.add(self.key)
            self._seen = True
        st.headers_paused = action == 1
        return st

    def _step(self, st: StreamState, what: int, num_headers: int, eos: int) -> int:
        """``PluginVM.step``; a trap in the callbacks that end the stream (after its
        own callbacks went through) costs the request nothing, as in the log phase."""
        vm = st.vm
        try:
            return vm.step(st, what, num_headers, eos)
        except GuestTrap as e:
            if e.callback not in driver.FINISH:
                raise
            vm.ended(st)
            self.rt.fail(vm, e.kind, e.message)
            return ENDED

    def _started(self, req: Request, st: StreamState) -> bool:
        """After ``_begin``: the call counted, and the stream kept for the request's
        later phases; False when it ended in that call already."""
        vm = st.vm
        vm.calls += 1
        if vm.calls >= FLUSH_EVERY:
            self.rt.flush(vm)
        if st.done:
            self._ended(st)
            return False
        self._keep(req, st)
        return True

    def _ended(self, st: StreamState) -> None:
        """What the log phase does once a stream ended before it."""
        vm = st.vm
        rt = self.rt
        if rt.failures and not vm.dead:
            rt.succeeded()
        if vm.queue_ready or vm.pending_root_calls:
            rt._wake_ticks()

    async def _settle(self, st: StreamState) -> None:
        vm = st.vm
        if not vm.calls_waiting:
            return
        calls = self.rt.take_calls(vm)
        if calls:
            await self.rt.run_calls(vm, calls)

    def _wait(self, req: Request, st: StreamState, step: int) -> Coroutine[Any, Any, Any]:
        """``access`` goes on in a coroutine. The calls to wait for are taken now,
        where the all-async ``access`` took them: between this return and the await
        other requests and the tick loop run, and a call one of them took would let
        this request go on without the response it waits for."""
        calls = self.rt.take_calls(st.vm) if step != _READ_BODY and st.vm.calls_waiting else []
        return self._access_wait(req, st, step, calls)

    def _streams_body(self, req: Request) -> bool:
        """True when the proxy will run this plugin's ``request_body_filter``: it runs
        the route's chain only, so a global rule's plugin gets the body whole in
        ``access`` (buffered, as the proxy cannot stream it to that plugin)."""
        chain = getattr(req.route, "chain", None)
        if chain is None:
            return False
        return any(h[0] is self.plugin for h in chain.request_body_filter)

    def _body_call(self, req: Request, st: StreamState, body: bytes) -> None:
        """The whole request body to ``proxy_on_request_body`` (end of stream)."""
        vm = st.vm
        st.body_done = True
        st.req_body = body
        vm.call_stream(st, "proxy_on_request_body", len(st.req_body), 1)
        vm.calls += 1
        if vm.calls >= FLUSH_EVERY:
            self.rt.flush(vm)

    def _body_step(self, req: Request, st: StreamState) -> int:
        """What ``access`` does about the request body once the headers are through
        (``_DONE``: nothing, the request goes on)."""
        if st.vm.on_request_body is None or not (req.chunked or req.content_length):
            if st.vm.dead:
                raise GuestTrap("host", "VM discarded while the request was paused")
            return _DONE
        if req.body is None:
            if (
                not st.headers_paused
                and (req.chunked or (req.content_length or 0) > BUFFER_BODY_BELOW)
                and self._streams_body(req)
            ):
                # streamed: request_body_filter gives the guest each chunk as it goes
                # upstream (a local response from there can only abort)
                return _DONE
            # the proxy buffers this body before going upstream anyway: give it whole
            # here, where a local response can still answer the request
            return _READ_BODY if req.read_body is not None else _DONE
        if len(req.body) > self.max_body_bytes:
            raise ClientError("request body too large", 413)
        return _CALL_BODY

    @staticmethod
    def _body_end(req: Request, st: StreamState) -> Response | None:
        if st.local is not None:
            return st.local
        if st.req_body is not req.body:
            req.head_source = None  # a new Content-Length
            req.body = st.req_body
            req.content_length = len(st.req_body)
            req.chunked = False
            req.headers.remove("transfer-encoding")
            req.headers.set("content-length", str(len(st.req_body)))
        if st.vm.dead:
            raise GuestTrap("host", "VM discarded while the request was paused")
        return None

    # -- phases ----------------------------------------------------------------------

    def access(self, req: Request) -> Response | Coroutine[Any, Any, Response | None] | None:
        """Sync-first: the answer (a local ``Response`` or None to go on) when nothing
        has to wait, else a coroutine to await for it (http_calls to perform, a
        request body to read)."""
        st: StreamState | None = None
        try:
            st = self._begin(req)
            if st is None or not self._started(req, st):
                return None
            vm = st.vm
            if vm.calls_waiting:
                return self._wait(req, st, _SETTLE_HEADERS)
            if st.local is not None:
                return st.local
            step = self._body_step(req, st)
            if step == _DONE:
                return None
            if step == _READ_BODY:
                return self._wait(req, st, _READ_BODY)
            assert req.body is not None
            self._body_call(req, st, req.body)
            if vm.calls_waiting:
                return self._wait(req, st, _SETTLE_BODY)
            return self._body_end(req, st)
        except GuestTrap as e:
            return self._failed(req, st or self._state(req), e)

    async def _access_wait(
        self, req: Request, st: StreamState, step: int, calls: list[PendingCall]
    ) -> Response | None:
        """The rest of ``access`` from its first wait on (``step``; ``calls``: the
        ones to perform first)."""
        try:
            vm = st.vm
            if calls:
                await self.rt.run_calls(vm, calls)
            if step == _SETTLE_HEADERS:
                if st.local is not None:
                    return st.local
                step = self._body_step(req, st)
                if step == _DONE:
                    return None
            if step == _READ_BODY:
                req.body = await req.read_body(self.max_body_bytes)  # type: ignore[misc]
            if step != _SETTLE_BODY:
                assert req.body is not None
                self._body_call(req, st, req.body)
                if vm.calls_waiting:
                    await self._settle(st)
            return self._body_end(req, st)
        except GuestTrap as e:
            return self._failed(req, st, e)

    async def request_body_filter(self, req: Request, chunk: bytes, eof: bool) -> bytes:
        st = self._state(req)
        if st is None or st.skipped or st.body_done:
            return chunk
        vm = st.vm
        if vm.on_request_body is None:
            return chunk
        try:
            if vm.dead:
                raise GuestTrap("host", "VM was discarded during the request")
            st.req_body = st.req_body + chunk if st.req_body else chunk
            action = vm.call_stream(st, "proxy_on_request_body", len(st.req_body), int(eof))
            vm.calls += 1
            if vm.calls >= FLUSH_EVERY:
                self.rt.flush(vm)
            if vm.calls_waiting:
                await self._settle(st)
            if st.local is not None:
                # the upstream request has started: abandon it and answer instead, as
                # Envoy does while no response has gone to the client
                st.skipped = True
                raise LocalReply(st.local)
            if action != _CONTINUE and not eof:
                if len(st.req_body) > self.max_body_bytes:
                    raise ClientError("request body too large", 413)
                return b""
            out, st.req_body = st.req_body, b""
            return out
        except GuestTrap as e:
            self.rt.fail(vm, e.kind, e.message)
            st.skipped = True
            if self.fail_open:
                out, st.req_body = st.req_body, b""
                return out
            # part of the body may be upstream already: abort rather than pass it unfiltered
            raise PluginError(f"wasm plugin {self.name} failed") from None

    def header_filter(self, req: Request, resp: Response) -> Response | None:
        st = self._state(req)
        if st is None:
            return self._begin_response(req, resp) if self.lazy else None
        if st.skipped:
            return None
        vm = st.vm
        try:
            if vm.dead:
                raise GuestTrap("host", "VM was discarded during the request")
            st.set_response(resp)
            f = vm.on_response_headers
            if f is None:
                return None
            if self.end_response:
                if self._step(st, RESPONSE | END, len(resp.headers) + 1, int(resp.local)) == ENDED:
                    self._forget(req)
                    self._ended(st)
            else:
                # ``PluginVM.call_stream``, inlined: this runs for every response
                sid = st.id
                vm.current = sid
                vm.cur_stream = st
                vm.cur_root = st.root
                f(sid, len(resp.headers) + 1, 1 if resp.local else 0)
            vm.calls += 1
            if vm.calls >= FLUSH_EVERY:
                self.rt.flush(vm)
            local = st.local
            if local is not None and local is not resp:
                st.local = None
                return local
            return None
        except GuestTrap as e:
            return self._failed(req, st, e)

    def _begin_response(self, req: Request, resp: Response) -> Response | None:
        """``header_filter`` for a module without request callbacks (``lazy_context``):
        the context starts here."""
        try:
            st = self._begin(req, resp)
        except GuestTrap as e:
            return self._failed(req, self._state(req), e)
        if st is None or not self._started(req, st):
            return None
        local = st.local
        if local is not None and local is not resp:
            st.local = None
            return local
        return None

    def body_filter(self, req: Request, resp: Response, chunk: bytes, eof: bool) -> bytes:
        st = self._state(req)
        if st is None or st.skipped:
            return chunk
        vm = st.vm
        f = vm.on_response_body
        if f is None:
            return chunk
        try:
            if vm.dead:
                raise GuestTrap("host", "VM was discarded during the request")
            body = st.resp_body + chunk if st.resp_body else chunk
            st.resp_body = body
            sid = st.id
            vm.current = sid
            vm.cur_stream = st
            vm.cur_root = st.root
            action = f(sid, len(body), 1 if eof else 0)
            vm.calls += 1
            if vm.calls >= FLUSH_EVERY:
                self.rt.flush(vm)
            if action and not eof and len(st.resp_body) <= self.max_body_bytes:
                return b""
            out, st.resp_body = st.resp_body, b""
            return out
        except GuestTrap as e:
            self.rt.fail(vm, e.kind, e.message)
            st.skipped = True
            if self.fail_open:
                out, st.resp_body = st.resp_body, b""
                return out
            # the status line is gone already: abort rather than pass unfiltered data
            raise PluginError(f"wasm plugin {self.name} failed") from None

    def log(self, req: Request, resp: Response | None) -> None:
        st = self._forget(req)
        if st is None:
            return
        vm = st.vm
        if vm.dead:
            vm.streams.pop(st.id, None)
            return
        try:
            if resp is not None and st.resp is None:
                st.set_response(resp)
            vm.finish_stream(st)
            vm.calls += 1
            rt = self.rt
            if vm.calls >= FLUSH_EVERY:
                rt.flush(vm)
            if not st.skipped and rt.failures:
                rt.succeeded()
            if vm.queue_ready or vm.pending_root_calls:
                rt._wake_ticks()
        except GuestTrap as e:
            self.rt.fail(vm, e.kind, e.message)


def unchained_phases(exports: set[str] | frozenset[str]) -> frozenset[str]:
    """The phases a module has no callback for, left out of the chain (``Plugin.unchained``).

    A phase the module cannot use then costs the request nothing: without
    ``proxy_on_response_body`` the response keeps its upstream framing instead of being
    re-chunked; without ``proxy_on_request_body`` the request body is not re-chunked;
    with neither response callback the response reaches the context in the log phase
    (``on_log`` reads it); a module whose context starts with the response
    (``lazy_context``) has no request phase. The methods stay callable directly (the
    plugin toolkit, tests).
    """
    out = set()
    if "proxy_on_request_body" not in exports:
        out.add("request_body_filter")
    if "proxy_on_response_headers" not in exports and "proxy_on_response_body" not in exports:
        out.add("header_filter")
    if "proxy_on_response_body" not in exports:
        out.add("body_filter")
    if lazy_context(exports):
        out.add("access")
    return frozenset(out)


def lazy_context(exports: set[str] | frozenset[str]) -> bool:
    """True for a module that sees neither the request nor the log, only the response:
    its HTTP context is created when the response headers arrive (on_context_create
    then on_response_headers, in one call) instead of when the request does. A request
    that ends before any response then never had a context in that VM; nothing the
    module exports could have seen it."""
    return (
        not any(n in exports for n in _REQUEST_CALLBACKS)
        and "proxy_on_log" not in exports
        and ("proxy_on_response_headers" in exports or "proxy_on_response_body" in exports)
    )


def stream_ends(exports: set[str] | frozenset[str]) -> tuple[int, int, int]:
    """``driver.END`` (or 0) for the headers callbacks after which a module has no
    callback left for the stream: the request's without a body, the request's with a
    body, the response's. The stream then ends in the same call into the guest (when
    the callback answers Continue and holds nothing open), and the log phase has
    nothing to do. The host delivers no trailers, so trailer callbacks do not count."""
    later = ("proxy_on_response_headers", "proxy_on_response_body", "proxy_on_log")
    request = 0 if any(n in exports for n in later) else END
    request_body = 0 if "proxy_on_request_body" in exports else request
    response = (
        END
        if "proxy_on_response_headers" in exports
        and "proxy_on_response_body" not in exports
        and "proxy_on_log" not in exports
        else 0
    )
    return request, request_body, response


_REQUEST_CALLBACKS = ("proxy_on_request_headers", "proxy_on_request_body")


def make_factory(
    runtime: PluginRuntime,
    plugin_name: str,
    priority: int,
    failure_policy: str,
    max_body_bytes: int,
) -> Any:
    """The registry factory ``(name, raw_conf, env) -> Plugin`` for one wasm plugin.

    ``raw_conf`` is ``{"conf": <string or object>, "root_id": str, "root_only": bool}``
    (all optional). The root context starts here, so a configuration the module
    refuses (on_vm_start/on_configure false, a trap) fails the snapshot.
    """

    def factory(name: str, raw: Any, env: CompileEnv) -> Plugin:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise PluginConfigError("", "expected an object with 'conf'")
        extra = set(raw) - _CONF_KEYS
        if extra:
            raise PluginConfigError(sorted(extra)[0], "unknown field")
        root_id = raw.get("root_id", "")
        if not isinstance(root_id, str):
            raise PluginConfigError("root_id", "expected a string")
        conf = raw.get("conf")
        if conf is not None and not isinstance(conf, str | dict | list):
            raise PluginConfigError("conf", "expected a string or an object")
        key = (root_id, encode_conf(conf))
        if raw.get("root_only"):
            runtime.root_only.add(key)
            root = runtime.roots.get(key)
            if root is not None:  # made for the same configuration elsewhere
                root.root_only = True
        try:
            runtime.register(*key)
        except (VmStartError, GuestTrap, ModuleError) as e:
            logs = list(runtime.vm.logs) if runtime.vm is not None else []
            raise PluginConfigError(
                "conf", f"wasm plugin {plugin_name}: {start_error_message(e, logs)}"
            ) from None
        exports = {e.name for e in runtime.module.exports}
        return WasmPlugin(
            plugin_name, priority, runtime, key, failure_policy, max_body_bytes, exports
        )

    return factory


async def run_access(plugin: Any, req: Request) -> Response | None:
    """Run a sync-first ``access`` handler to its answer, as the chain does: call it,
    and await what it returned unless that is already the answer (None or a
    ``Response``). For callers outside the chain (the plugin toolkit, benches, tests)."""
    r = plugin.access(req)
    if r is not None and not isinstance(r, Response):
        r = await r
    return r
