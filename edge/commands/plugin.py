"""``edge plugin new|build|test``: the plugin author's toolkit (plugin_sdk/README.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.plugin_toolkit import builder, scaffold
from edge.plugin_toolkit.messages import (
    MessageError,
    RequestSpec,
    ResponseSpec,
    parse_request,
    parse_response,
)
from edge.plugin_toolkit.paths import ToolchainMissing

EXIT_USAGE = 3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plugin", help="create, build and test WASM plugins")
    sub = p.add_subparsers(dest="plugin_command", metavar="SUBCOMMAND", required=True)

    n = sub.add_parser("new", help="create a plugin skeleton with a test")
    n.add_argument("name", help="plugin name: lower-case letters, digits, '-'")
    n.add_argument("--lang", required=True, choices=("rust", "assemblyscript"))
    n.add_argument("--dir", default=".", help="parent directory (default: current)")
    n.set_defaults(func=cmd_new)

    b = sub.add_parser("build", help="compile a plugin project to dist/<name>.wasm")
    b.add_argument("dir", nargs="?", default=".", help="the project (default: current)")
    b.set_defaults(func=cmd_build)

    t = sub.add_parser(
        "test",
        help="run one request through a module on the production WASM host",
        description="Runs MODULE on the gateway's own WASM host (edge.wasm) against one "
        "request and a canned upstream response, and "
        "prints what the upstream and the client would see, the plugin's log, metrics and "
        "time per callback. Exit status: 0 ok, 1 the module trapped, 2 it rejected its "
        "configuration, 3 bad input.",
    )
    t.add_argument("module", help="the .wasm file")
    t.add_argument("--config", default="", help="plugin configuration: JSON text or @file")
    t.add_argument("--vm-config", default="", help="VM configuration: text or @file")
    t.add_argument("--request", help="request file (JSON or raw HTTP/1.1)")
    t.add_argument("--method", default="GET")
    t.add_argument("--path", default="/")
    t.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="request header (repeatable)",
    )
    t.add_argument("--body", default="", help="request body: text or @file")
    t.add_argument("--upstream-response", help="canned upstream response file (JSON or raw)")
    t.add_argument(
        "--call-upstream",
        action="append",
        default=[],
        metavar="ID=HOST:PORT",
        help="an upstream the plugin's http_calls may reach (repeatable)",
    )
    t.add_argument("--name", default="", help="plugin_name property (default: module file stem)")
    t.add_argument("--root-id", default="", help="plugin_root_id property")
    t.add_argument("--max-body-bytes", type=int, default=1 << 20)
    t.add_argument("--memory-mb", type=int, default=64)
    t.add_argument("--cpu-ms", type=float, default=10.0, help="CPU budget per callback")
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    t.set_defaults(func=cmd_test)


def _fail(message: str, code: int = 1) -> int:
    print(f"edge plugin: {message}", file=sys.stderr)
    return code


def cmd_new(args: argparse.Namespace) -> int:
    try:
        project = scaffold.new(args.name, args.lang, Path(args.dir))
    except (scaffold.ScaffoldError, OSError) as e:
        return _fail(str(e))
    print(f"created {project}")
    print(f"next: edge plugin build {project}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    try:
        built = builder.build(Path(args.dir))
    except ToolchainMissing as e:
        return _fail(str(e))
    except builder.BuildError as e:
        return _fail(str(e))
    print(f"module: {built.path}")
    print(f"size: {built.size} bytes")
    print(f"sha256: {built.sha256}")
    return 0


def _text_or_file(value: str, what: str) -> bytes:
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as e:
            raise MessageError(f"{what}: cannot read {value[1:]}: {e.strerror}") from None
    return value.encode()


def _request(args: argparse.Namespace) -> RequestSpec:
    if args.request:
        try:
            data = Path(args.request).read_bytes()
        except OSError as e:
            raise MessageError(f"--request: cannot read {args.request}: {e.strerror}") from None
        return parse_request(data, args.request)
    headers = []
    for h in args.header:
        name, colon, value = h.partition(":")
        if not colon or not name.strip():
            raise MessageError(f"--header {h!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    body = _text_or_file(args.body, "--body")
    if body and not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("content-length", str(len(body))))
    return RequestSpec(method=args.method.upper(), path=args.path, headers=headers, body=body)


def cmd_test(args: argparse.Namespace) -> int:
    # wasmtime and the host load only for this subcommand, not for every `edge` command
    from edge.plugin_toolkit import report as reports
    from edge.plugin_toolkit.production import run_production

    try:
        wasm = Path(args.module).read_bytes()
    except OSError as e:
        return _fail(f"cannot read {args.module}: {e.strerror}", EXIT_USAGE)
    try:
        conf = _text_or_file(args.config, "--config")
        vm_config = _text_or_file(args.vm_config, "--vm-config")
        request = _request(args)
        upstream = ResponseSpec()
        if args.upstream_response:
            try:
                data = Path(args.upstream_response).read_bytes()
            except OSError as e:
                raise MessageError(
                    f"--upstream-response: cannot read {args.upstream_response}: {e.strerror}"
                ) from None
            upstream = parse_response(data, args.upstream_response)
    except MessageError as e:
        return _fail(str(e), EXIT_USAGE)
    upstreams: dict[str, dict[str, dict[str, int]]] = {}
    for item in args.call_upstream:
        uid, eq, addr = item.partition("=")
        if not eq or not uid or ":" not in addr:
            return _fail(f"--call-upstream {item!r}: expected ID=HOST:PORT", EXIT_USAGE)
        upstreams[uid] = {"nodes": {addr: 1}}
    report = run_production(
        wasm,
        conf=conf,
        vm_config=vm_config,
        request=request,
        upstream=upstream,
        plugin_name=args.name or Path(args.module).stem,
        root_id=args.root_id,
        max_body_bytes=args.max_body_bytes,
        memory_mb=args.memory_mb,
        cpu_ms=args.cpu_ms,
        upstreams=upstreams,
    )
    print(json.dumps(report, indent=2) if args.json else reports.format_text(report))
    return reports.exit_code(report)
