"""``edge validate PATH``: check a configuration exactly as ``edge run`` would load it.

Exit codes: 0 valid, 1 invalid (one ``FILE: FIELD.PATH: message`` line per problem on
stdout), 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from edge.config.load import ConfigFileError
from edge.errors import ConfigError
from edge.snapshot import load_snapshot


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "validate",
        help="check a configuration without serving it",
        description="Load, validate and compile a configuration (YAML/JSON file, or a "
        "directory holding edge.yaml) the way `edge run` does, without serving it. "
        "Prints every problem as `FILE: FIELD.PATH: message`. Exit status: 0 valid, "
        "1 invalid, 2 unreadable.",
    )
    p.add_argument("path", metavar="PATH", help="configuration file or directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        snap = load_snapshot(args.path)
    except ConfigFileError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        return 2
    except ConfigError as e:
        for line in e.lines():
            print(line)
        return 1
    print(f"OK: {args.path} ({snap.summary()}; version {snap.version})")
    return 0
