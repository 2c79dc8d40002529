"""RFC 9110/9112 head grammar as compiled patterns, for the parsers' fast path.

A well-formed head (the overwhelming majority) is validated by one ``fullmatch`` of a
pattern compiled at import, then split with ``str`` methods: cheaper than a Python
callback per header field. Anything the pattern does not accept goes to httptools
(llhttp, strict), which either accepts it too or says precisely what is wrong, so this
fast path can only be stricter, never more lenient.

Quantifiers around whitespace are possessive: a field value full of spaces cannot make
the match backtrack quadratically.
"""

from __future__ import annotations

import re

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]++"
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_VALUE = rb"(?:" + _VCHAR + rb"++(?:[ \t]++" + _VCHAR + rb"++)*+)?+"
_FIELDS = rb"((?:" + _TOKEN + rb":[ \t]*+" + _VALUE + rb"[ \t]*+\r\n)*+)\r\n"

REQUEST_HEAD = re.compile(
    rb"(" + _TOKEN + rb") ([\x21-\x7e]++) HTTP/([0-9])\.([0-9])\r\n" + _FIELDS
)
RESPONSE_HEAD = re.compile(
    rb"HTTP/([0-9])\.([0-9]) ([1-9][0-9][0-9])(?: ([\t \x21-\x7e\x80-\xff]*+))?\r\n" + _FIELDS
)

# the methods llhttp knows; anything else goes the slow way (and is refused there)
KNOWN_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK QUERY".split()
)


class Fields:
    """Header fields split from a validated block, plus what framing needs to know."""

    __slots__ = ("items", "hosts", "te", "cl", "expect", "connection")

    def __init__(self) -> None:
        self.items: list[list[str]] = []
        self.hosts = 0
        self.te: list[str] = []
        self.cl: list[str] = []
        self.expect: str | None = None
        self.connection = ""

    def add(self, n: str, v: str) -> None:
        ln = n.lower()
        self.items.append([ln, n, v])
        if ln == "host":
            self.hosts += 1
        elif ln == "content-length":
            self.cl.append(v)
        elif ln == "transfer-encoding":
            self.te.append(v)
        elif ln == "connection":
            self.connection += v.lower() + ","
        elif ln == "expect":
            self.expect = v


_NOTED = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})


def split_fields(block: bytes) -> Fields:
    """Fields of a block the patterns above accepted (each line ``name:value CRLF``)."""
    f = Fields()
    if block:
        items = f.items
        for line in block.decode("latin-1").split("\r\n")[:-1]:
            n, _, v = line.partition(":")
            ln = n.lower()
            v = v.strip(" \t")
            if ln in _NOTED:
                f.add(n, v)
            else:
                items.append([ln, n, v])
    return f
