"""key-auth (APISIX priority 2500): identify the consumer by an API key.

The key is read from the ``header`` field, else the ``query`` argument. Consumers are
indexed by key once per snapshot; the lookup compares with a dict, which is
constant-time in the key length up to the hash, so no per-consumer comparisons leak.
"""

from __future__ import annotations

from typing import Any

import msgspec

from edge.context import Request, Response
from edge.plugins import _auth, _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

MAX_KEY_LEN = 4096  # longer values are refused before any lookup


class Config(msgspec.Struct, forbid_unknown_fields=True):
    header: str = "apikey"
    query: str = "apikey"
    hide_credentials: bool = False
    anonymous_consumer: str | None = None
    realm: str = "key"


class KeyIndex(dict[str, Any]):
    """key -> consumer, plus each key's ``X-Credential-Identifier`` built once per index
    (a plain mapping to everything that only looks consumers up)."""

    def __init__(self) -> None:
        super().__init__()
        self.credential_ids: dict[str, str] = {}


class ConsumerConfig(msgspec.Struct, forbid_unknown_fields=True):
    key: str


class KeyAuth(Plugin):
    name = "key-auth"
    priority = 2500
    Config = Config
    ConsumerConfig = ConsumerConfig
    is_auth = True

    @classmethod
    def index_consumers(cls, creds: list[tuple[Any, Any]], env: CompileEnv) -> dict[str, Any]:
        index = KeyIndex()

        def add(consumer: Any, conf: ConsumerConfig) -> None:
            if not conf.key:
                raise PluginConfigError(
                    "key", f"consumer {consumer.username}: key must not be empty"
                )
            other = index.get(conf.key)
            if other is not None:
                raise PluginConfigError(
                    "key", f"consumers {other.username} and {consumer.username} use the same key"
                )
            index[conf.key] = consumer
            index.credential_ids[conf.key] = _auth.credential_id(consumer, cls.name)

        _auth.index_all(cls.name, creds, add)
        return index

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        self.header = conf.header.lower()
        self.index: dict[str, Any] = env.consumer_index(self.name) or {}
        self.credential_ids: dict[str, str] = getattr(self.index, "credential_ids", {})
        self.anonymous = _auth.Anonymous(conf.anonymous_consumer, env)
        self.www = [("WWW-Authenticate", f'Key realm="{conf.realm}"')]

    def _fail(self, req: Request, msg: str) -> Response | None:
        return self.anonymous.fallback(req, _reply.message(401, msg, self.www))

    def rewrite(self, req: Request) -> Response | None:
        key = req.headers.get(self.header)
        from_header = key is not None
        if key is None:
            key = req.args.get(self.conf.query) if req.query else None
        if key is None:
            return self._fail(req, "Missing API key in request")
        consumer = self.index.get(key) if len(key) <= MAX_KEY_LEN else None
        if consumer is None:
            return self._fail(req, "Invalid API key in request")
        if self.conf.hide_credentials:
            if from_header:
                req.headers.remove(self.header)
            else:
                _auth.strip_query_arg(req, self.conf.query)
        _auth.attach_consumer(req, consumer, self.credential_ids.get(key))
        return None
