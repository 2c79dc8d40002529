"""``edge native build|status``: the compiled hot-path modules (edge/native.py)."""

from __future__ import annotations

import argparse
import sys

from edge import native


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "native",
        help="compile the hot-path modules with mypyc, or say whether they are in use",
        description="`build` compiles the modules every request runs through with mypyc "
        "(needs mypy, a C compiler and Python's headers) into build/native/; they are "
        "used while the package's source is exactly what was compiled. `status` says "
        "whether they are in use (exit 0) or why not (exit 1).",
    )
    p.add_argument("action", choices=("build", "status"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        try:
            d = native.build()
        except (Exception, SystemExit) as e:  # mypy or the compiler (setup() exits) failed
            print(f"edge native build: failed: {e}", file=sys.stderr)
            return 1
        print(f"edge native build: {len(native.MODULES)} modules compiled into {d}")
        return 0
    print(f"edge native: {native.state}")
    return 0 if native.active() else 1
