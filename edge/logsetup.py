"""Operational logs: one JSON object per line on stderr.

Every line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
``pid``, ``msg`` and the structured fields passed as ``extra={"fields": {...}}``;
workers add ``worker`` (their index). Fields are data, never pre-formatted into ``msg``,
so a log pipeline can filter on them. The access log is separate (edge.accesslog).

Call sites guard expensive field building with ``log.isEnabledFor(level)``; the plain
``log.info("...", extra=...)`` form costs a level check when the level is off.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            **self.static,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode("utf-8", "replace")


def setup(level: str = "info", **static: Any) -> None:
    """Send the ``edge`` loggers to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(static))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
    # third-party libraries log chatter at info; keep them at warning unless debugging
    if root.level > logging.DEBUG:
        for noisy in ("botocore", "boto3", "urllib3", "google", "securesystemslib", "tuf"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
