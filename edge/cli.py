"""The ``edge`` command line.

Each command group lives beside the code it drives and contributes its parser through
``add_parser(subparsers)``; the function it sets as ``func`` receives the parsed args
and returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edge import __version__

# (module, what it adds); each module defines add_parser(subparsers)
COMMANDS = (
    "edge.commands.run",  # edge run
    "edge.commands.validate",  # edge validate
    "edge.commands.plugin",  # edge plugin new|build|test
    "edge.commands.bundle",  # edge bundle init|publish|status|rollback|promote|tenant|...
    "edge.commands.native",  # edge native build|status
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge",
        description="edge: a multi-cloud edge API gateway (trio reverse proxy, APISIX-style "
        "plugins, proxy-wasm sandboxes, signed configuration bundles).",
    )
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
