"""``edge run``: serve a configuration with a supervisor and N worker processes."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.node_config import (
    DEFAULT_ADMIN,
    DEFAULT_LISTEN,
    LOG_LEVELS,
    NodeConfig,
    check,
    load_node_config,
    merge_flags,
)

EXIT_INVALID = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Serve the configuration in PATH (a YAML/JSON file, or a directory holding edge.yaml)
with one supervisor process and N worker processes sharing the listen sockets.

The supervisor validates and compiles the configuration before starting workers and
refuses to start on an invalid one (exit 1, one line per problem). It reloads on SIGHUP
and when the file changes: a bad new configuration is logged and reported on /status
while the old one keeps serving. SIGTERM/SIGINT drain: stop accepting, finish in-flight
requests within --grace-period, exit 0. A worker that dies is restarted.

Admin listener (default 127.0.0.1:9090): GET /healthz, /readyz (200 only when a valid
configuration is loaded and all workers are ready), /status (JSON), /metrics
(Prometheus text summed over all workers).
"""

EPILOG = """\
Flags override the node file (--node). With --bundle-source the configuration comes
from signed bundles instead of --config. Logs are JSON lines on stderr.

examples:
  edge run --config examples/quickstart/edge.yaml --listen 127.0.0.1:9080 --workers 1
  edge run --node /etc/edge/node.yaml
  edge run --bundle-source s3://bundles/prod --trusted-root /etc/edge/root.json
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="serve a configuration (supervisor + worker processes)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (YAML/JSON) or directory holding edge.yaml",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        action="append",
        help=f"proxy listen address; repeat for several (default {DEFAULT_LISTEN}); "
        "replaces the node file's listeners",
    )
    p.add_argument(
        "--admin", metavar="HOST:PORT", help=f"admin listener address (default {DEFAULT_ADMIN})"
    )
    p.add_argument("--workers", metavar="N", type=int, help="worker processes (default: CPU count)")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="metrics files, last-known-good bundles, WASM cache "
        "(default /var/lib/edge as root, else ~/.local/state/edge)",
    )
    p.add_argument("--node", metavar="FILE", help="node configuration file (YAML)")
    p.add_argument(
        "--log-level", choices=LOG_LEVELS, help="log level for stderr JSON logs (default info)"
    )
    p.add_argument(
        "--grace-period",
        metavar="S",
        type=float,
        help="seconds SIGTERM waits for in-flight requests (default 30)",
    )
    p.add_argument("--access-log", metavar="TARGET", help="stderr (default), off, or a file path")
    b = p.add_argument_group("signed bundles (instead of --config)")
    b.add_argument(
        "--bundle-source",
        metavar="URL",
        help="bundle store: file:///dir, s3://bucket/prefix or gs://bucket/prefix",
    )
    b.add_argument("--trusted-root", metavar="FILE", help="pinned TUF root.json")
    b.add_argument(
        "--poll-interval", metavar="S", type=float, help="seconds between polls (default 30)"
    )
    b.add_argument("--node-id", metavar="ID", help="this node's id (default: host name)")
    p.set_defaults(func=run)


def resolve_node(args: argparse.Namespace) -> NodeConfig:
    """The node file (if any) with the flags applied; ConfigError when invalid."""
    node = load_node_config(args.node) if args.node else NodeConfig()

    def absolute(value: str | None) -> str | None:
        if value is None or "://" in value:
            return value
        return str(Path(value).absolute())

    merged = merge_flags(
        node,
        listen=args.listen,
        admin=args.admin,
        workers=args.workers,
        state_dir=absolute(args.state_dir),
        log_level=args.log_level,
        config=absolute(args.config),
        bundle_source=absolute(args.bundle_source),
        trusted_root=absolute(args.trusted_root),
        poll_interval=args.poll_interval,
        node_id=args.node_id,
        grace_period=args.grace_period,
        access_log=args.access_log
        if args.access_log in (None, "stderr", "off")
        else absolute(args.access_log),
    )
    # a flag given with the other source overrides the file's source
    if args.config and not args.bundle_source:
        merged.bundle_source = None
    if args.bundle_source and not args.config:
        merged.config = None
    problems = check(merged)
    if problems:
        raise ConfigError(problems, args.node or "command line")
    return merged


def _bundle_runner(node: NodeConfig) -> Any:
    """An async callable ``(supervisor) -> None`` running the bundle sync."""
    # imported here: the cloud SDKs it pulls in cost a second of start-up otherwise
    from edge.bundles.sync import BundleSync

    sync = BundleSync(
        node.bundle_source,
        node.trusted_root,
        node.effective_state_dir(),
        node.effective_node_id(),
        node.poll_interval,
    )

    async def runner(supervisor: Any) -> None:
        await sync.run(supervisor.install, supervisor.set_status)

    return runner


def run(args: argparse.Namespace) -> int:
    if not (args.config or args.bundle_source or args.node):
        print(
            "edge run: --config PATH (or --bundle-source URL, or --node FILE) is required",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        node = resolve_node(args)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_INVALID
    bundle_runner = _bundle_runner(node) if node.bundle_source else None

    from edge import logsetup
    from edge.supervisor import Supervisor

    logsetup.setup(node.log_level)
    log = logging.getLogger("edge.run")
    try:
        sup = Supervisor(node)
    except ValueError as exc:
        print(f"edge run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sup.prepare_state()
    except OSError as exc:
        print(f"edge run: state dir {sup.state_dir}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    if node.config:
        try:
            sup.load_initial(node.config)
        except ConfigError as exc:
            for line in exc.lines():
                print(line, file=sys.stderr)
            log.error("configuration invalid; not starting", extra={"fields": {"path": exc.file}})
            return EXIT_INVALID
    try:
        sup.bind()
    except OSError as exc:
        sup.close_sockets()
        print(f"edge run: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID

    import trio

    return trio.run(sup.serve, bundle_runner)
