"""Shared data (key/value with CAS) and shared queues for proxy-wasm VMs.

Scope: the worker process. Every VM of the worker (all plugins, all tenants' VMs are
separated by key prefix, see below) sees the same store, and it survives VM restarts
and snapshot swaps. It is not shared across a node's worker processes: that would need
a lock-free shared-memory table or a broker process on the request path, and every
hostcall here is synchronous inside a guest call, which must not wait on another
process. Plugins written for Envoy already cope with this, because Envoy's shared data
is per VM id (per worker thread group) too.

Isolation: keys and queue names are scoped by tenant, so one tenant can never read or
overwrite another's data (Envoy scopes by vm_id; edge's tenant is the trust boundary).
Sans-IO: plain dicts and deques.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from edge.wasm.abi import Status

# bounds so a guest cannot grow the worker without limit through shared state
MAX_KEYS_PER_TENANT = 10_000
MAX_VALUE_BYTES = 1 << 20
MAX_QUEUE_ITEMS = 10_000


class SharedData:
    def __init__(self) -> None:
        # (tenant, key) -> (value, cas)
        self._data: dict[tuple[str, bytes], tuple[bytes, int]] = {}
        self._count: dict[str, int] = {}
        self._cas = 0

    def get(self, tenant: str, key: bytes) -> tuple[bytes, int] | None:
        return self._data.get((tenant, key))

    def set(self, tenant: str, key: bytes, value: bytes, cas: int) -> Status:
        """CAS 0 writes unconditionally; otherwise it must match the current CAS."""
        if len(value) > MAX_VALUE_BYTES:
            return Status.BAD_ARGUMENT
        k = (tenant, key)
        cur = self._data.get(k)
        if cas and (cur is None or cur[1] != cas):
            return Status.CAS_MISMATCH
        if cur is None:
            if self._count.get(tenant, 0) >= MAX_KEYS_PER_TENANT:
                return Status.INTERNAL_FAILURE
            self._count[tenant] = self._count.get(tenant, 0) + 1
        self._cas += 1
        self._data[k] = (value, self._cas)
        return Status.OK


class SharedQueues:
    """Queues by id; ``register`` returns the same id for the same (tenant, vm, name)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, bytes], int] = {}
        self._queues: dict[int, deque[bytes]] = {}
        self._owner: dict[int, str] = {}
        # queue id -> callback notifying the registering VM (proxy_on_queue_ready)
        self._watchers: dict[int, Callable[[int], None]] = {}
        self._next = 1

    def register(
        self, tenant: str, vm_id: str, name: bytes, notify: Callable[[int], None] | None
    ) -> int:
        k = (tenant, vm_id, name)
        qid = self._ids.get(k)
        if qid is None:
            qid = self._next
            self._next += 1
            self._ids[k] = qid
            self._queues[qid] = deque()
            self._owner[qid] = tenant
        if notify is not None:
            self._watchers[qid] = notify
        return qid

    def resolve(self, tenant: str, vm_id: str, name: bytes) -> int | None:
        return self._ids.get((tenant, vm_id, name))

    def enqueue(self, tenant: str, qid: int, value: bytes) -> Status:
        q = self._queues.get(qid)
        if q is None or self._owner.get(qid) != tenant:
            return Status.NOT_FOUND
        if len(q) >= MAX_QUEUE_ITEMS or len(value) > MAX_VALUE_BYTES:
            return Status.INTERNAL_FAILURE
        q.append(value)
        w = self._watchers.get(qid)
        if w is not None:
            w(qid)
        return Status.OK

    def dequeue(self, tenant: str, qid: int) -> bytes | Status:
        q = self._queues.get(qid)
        if q is None or self._owner.get(qid) != tenant:
            return Status.NOT_FOUND
        if not q:
            return Status.EMPTY
        return q.popleft()

    def unwatch(self, notify: Callable[[int], None]) -> None:
        for qid, w in list(self._watchers.items()):
            if w is notify:
                del self._watchers[qid]


SHARED_DATA = SharedData()
SHARED_QUEUES = SharedQueues()
