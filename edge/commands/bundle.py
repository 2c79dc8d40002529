"""``edge bundle ...``: create and publish signed configuration bundles.

Exit codes: 0 done, 1 refused (invalid configuration, bad keys, repository problem;
one line per problem naming the file and field), 2 usage, 3 storage unreachable
(nothing the nodes read has changed: metadata is uploaded last).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.bundles.repository import Repository

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_STORAGE = 3

DESCRIPTION = """\
Publish gateway configuration as signed bundles through object storage.

A repository is a TUF repository (The Update Framework, python-tuf) in a store:
file:///dir (or a plain path), s3://bucket/prefix (AWS credentials from the standard
chain; AWS_ENDPOINT_URL_S3 for S3-compatible stores) or gs://bucket/prefix
(Application Default Credentials; STORAGE_EMULATOR_HOST honoured).

Keys live in a directory: NAME.pub.json plus NAME.pem (Ed25519, created by init) or
NAME.uri (a securesystemslib signer URI such as awskms:... or gcpkms:...).
Nodes pin DIR/root.json with `edge run --trusted-root`.
"""

EPILOG = """\
typical use:
  edge bundle init --store s3://acme-edge/prod --keys ./keys --threshold 2
  edge bundle publish ./config --store s3://acme-edge/prod --keys ./keys --canary 10
  edge bundle status --store s3://acme-edge/prod
  edge bundle promote --store s3://acme-edge/prod --keys ./keys
  edge bundle rollback --store s3://acme-edge/prod --keys ./keys --to 3
  edge bundle refresh-timestamp --store s3://acme-edge/prod --keys ./keys   # from cron
"""


def _common(p: argparse.ArgumentParser, *, keys: bool = True) -> None:
    p.add_argument(
        "--store",
        required=True,
        metavar="URL",
        help="repository location: file:///dir, s3://bucket/prefix or gs://bucket/prefix",
    )
    if keys:
        p.add_argument(
            "--keys",
            required=True,
            type=Path,
            metavar="DIR",
            help="directory holding the repository keys and the pinned root.json",
        )


def add_parser(subparsers: Any) -> None:
    top = subparsers.add_parser(
        "bundle",
        help="create, publish, promote and roll back signed configuration bundles",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="bundle_command", metavar="SUBCOMMAND", required=True)

    def cmd(name: str, help: str, func: Callable[[argparse.Namespace], int], desc: str) -> Any:
        p = sub.add_parser(name, help=help, description=desc)
        p.set_defaults(func=_guarded(func))
        return p

    p = cmd(
        "init",
        "create a repository and its keys",
        _init,
        "Create a new repository in --store: Ed25519 keys for root (N of them), targets, "
        "snapshot and timestamp in --keys, version 1 of each role, and DIR/root.json, "
        "the file every node pins with --trusted-root. Refuses to overwrite an existing "
        "repository or key. Keep root keys offline once this is done.",
    )
    _common(p)
    p.add_argument(
        "--threshold",
        type=int,
        default=1,
        metavar="N",
        help="root signatures required for a root change (default 1)",
    )
    p.add_argument(
        "--root-keys",
        type=int,
        metavar="M",
        help="number of root keys to create (default: the threshold)",
    )

    p = cmd(
        "publish",
        "validate, compile and publish a configuration directory",
        _publish,
        "Validate and fully compile CONFIG_DIR exactly as a node would (refusing it with "
        "one FILE: FIELD: message line per problem), pack it as a deterministic tar.gz, "
        "upload it as a new target version, then sign and upload targets, snapshot and "
        "timestamp, in that order. With --canary P only nodes whose stable hash of node "
        "id falls under P%% take it; the others keep the current stable bundle.",
    )
    p.add_argument("config_dir", type=Path, metavar="CONFIG_DIR", help="directory with edge.yaml")
    _common(p)
    p.add_argument(
        "--canary",
        type=float,
        metavar="PERCENT",
        help="publish as a canary for PERCENT (0-100) of the nodes",
    )

    p = cmd(
        "status",
        "show versions, expiry dates, the live and canary bundles",
        _status,
        "Show the stable and canary bundles, the bundle history, tenants and every "
        "role's version and expiry. Reads only; with --keys or --trusted-root the "
        "metadata is verified from the pinned root.",
    )
    _common(p, keys=False)
    p.add_argument("--keys", type=Path, metavar="DIR", help="verify from DIR/root.json")
    p.add_argument("--trusted-root", type=Path, metavar="FILE", help="verify from FILE")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = cmd(
        "promote",
        "make the canary bundle stable for every node",
        _promote,
        "Move the canary bundle to 100%%: it becomes the stable bundle on every node.",
    )
    _common(p)

    p = cmd(
        "rollback",
        "publish an earlier bundle's content as a new version",
        _rollback,
        "Publish the content of bundle VERSION again as a new, higher version (TUF never "
        "goes back in version numbers, so nodes accept it as an update). Moves every "
        "node, canary or not.",
    )
    _common(p)
    p.add_argument("--to", type=int, required=True, metavar="VERSION", help="bundle version")

    p = cmd(
        "refresh-timestamp",
        "re-sign the timestamp (run from cron)",
        _refresh,
        "Re-sign timestamp (and snapshot when it is within a week of expiry) with no "
        "content change, so live nodes never see expired metadata. Timestamps live one "
        "day: run this at least every few hours. Needs only the timestamp and snapshot "
        "keys.",
    )
    _common(p)

    p = cmd(
        "rotate-key",
        "replace a role's key (signs a new root)",
        _rotate,
        "Generate a new key for ROLE, revoke the old one in a new root version signed by "
        "the root keys, and re-sign what the role signs. Nodes follow the root rotation "
        "and refuse anything signed by the old key from then on.",
    )
    p.add_argument("role", choices=("targets", "snapshot", "timestamp"), help="role to rekey")
    _common(p)

    tenant = sub.add_parser(
        "tenant",
        help="delegate tenants/<id>/* to a tenant key; publish a tenant's WASM module",
        description="Tenants publish their own WASM modules under tenants/<id>/, signed "
        "with their own key; nodes refuse a module for tenant A signed by anyone else. "
        "Modules appear in each bundle directory at tenants/<id>/<name>.",
    )
    tsub = tenant.add_subparsers(dest="tenant_command", metavar="SUBCOMMAND", required=True)
    p = tsub.add_parser(
        "add",
        help="delegate tenants/ID/* to a tenant key",
        description="Delegate tenants/ID/* to the tenant's key: a new key in "
        "--tenant-keys (default KEYS/tenants/ID) or, for a key the tenant keeps, "
        "--public-key FILE (a NAME.pub.json).",
    )
    p.set_defaults(func=_guarded(_tenant_add))
    p.add_argument("tenant_id", metavar="ID", help="tenant id: letters, digits, - and _")
    _common(p)
    p.add_argument("--tenant-keys", type=Path, metavar="DIR", help="where to create the key")
    p.add_argument("--public-key", type=Path, metavar="FILE", help="delegate to this key")
    p = tsub.add_parser(
        "publish-plugin",
        help="publish a tenant's WASM module",
        description="Sign MODULE with the tenant's key and publish it as tenants/ID/NAME. "
        "Snapshot and timestamp are signed with the repository's online keys (--keys).",
    )
    p.set_defaults(func=_guarded(_tenant_publish))
    p.add_argument("tenant_id", metavar="ID", help="tenant id")
    p.add_argument("module", type=Path, metavar="MODULE", help="the .wasm file")
    _common(p)
    p.add_argument(
        "--tenant-keys",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory with the tenant's key (tenant-ID.pub.json and .pem or .uri)",
    )
    p.add_argument("--name", metavar="NAME", help="published file name (default: MODULE's)")


# -- commands ---------------------------------------------------------------------------


def _repo(args: argparse.Namespace, *, load: bool = True) -> Repository:
    from cloud.store import open_store
    from edge.bundles.keys import Keyring
    from edge.bundles.repository import Repository

    repo = Repository(open_store(args.store), Keyring(args.keys))
    return repo.load() if load else repo


def _init(args: argparse.Namespace) -> int:
    repo = _repo(args, load=False)
    pinned = repo.init(root_threshold=args.threshold, root_keys=args.root_keys)
    print(f"created repository in {repo.store.url}; nodes pin {pinned}")
    return 0


def compile_config(config_dir: Path, modules: dict[str, bytes] | None = None) -> None:
    """Validate and compile ``config_dir`` the way a node does; ConfigError if invalid.

    ``modules`` (tenant modules by path) are laid out beside the configuration as a node
    lays them out, in a staging copy; errors still name the operator's files.
    """
    from edge import config_source

    if not (config_dir / "edge.yaml").is_file() and not (config_dir / "edge.yml").is_file():
        raise ConfigError(
            [("", "CONFIG_DIR must be a directory holding edge.yaml")], str(config_dir)
        )
    if (config_dir / "tenants").exists():
        raise ConfigError(
            [
                (
                    "tenants",
                    "reserved for tenants' signed modules (edge bundle tenant publish-plugin)",
                )
            ],
            str(config_dir),
        )
    with tempfile.TemporaryDirectory(prefix="edge-publish-") as tmp:
        shared: dict[str, Any] = {"state_dir": tmp, "node_id": "publisher", "role": "publisher"}
        target = config_dir
        if modules:
            target = Path(tmp) / "config"
            shutil.copytree(config_dir, target, symlinks=True)
            for path, data in modules.items():
                (target / path).parent.mkdir(parents=True, exist_ok=True)
                (target / path).write_bytes(data)
        try:
            config_source.compile_path(target, node_id="publisher", shared=shared)
        except ConfigError as e:
            if target != config_dir:
                e.file = e.file.replace(str(target), str(config_dir))
            raise


def _publish(args: argparse.Namespace) -> int:
    from edge.bundles.archive import pack

    if args.canary is not None and not 0 < args.canary <= 100:
        print("edge bundle publish: --canary must be within (0, 100]", file=sys.stderr)
        return EXIT_USAGE
    repo = _repo(args)
    compile_config(args.config_dir, repo.tenant_modules())
    data = pack(args.config_dir)
    entry = repo.publish_bundle(data, canary_percent=args.canary)
    what = f"canary for {entry.canary_percent:g}% of nodes" if entry.canary_percent else "stable"
    print(f"published bundle {entry.version} ({what}), sha256 {entry.sha256}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from cloud.store import open_store
    from edge.bundles.keys import Keyring
    from edge.bundles.repository import Repository

    # Status signs nothing: the keyring only locates a pinned root.json, if given.
    repo = Repository(open_store(args.store), Keyring(args.keys or Path("/nonexistent")))
    root = args.trusted_root or (args.keys / "root.json" if args.keys else None)
    doc = (repo.load(root) if root else repo.load(tofu=True)).status()
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"repository  {doc['store']}" + ("" if doc["root_pinned"] else "  (root not pinned)"))
    for name in ("stable", "canary"):
        e = doc[name]
        if e is None:
            print(f"{name:<11} -")
            continue
        extra = f", {e['canary_percent']:g}% of nodes" if "canary_percent" in e else ""
        back = f", rollback of {e['rolled_back_from']}" if "rolled_back_from" in e else ""
        print(
            f"{name:<11} version {e['version']}{extra}{back}, published {e['published_at']}, "
            f"sha256 {e['sha256'][:16]}..."
        )
    print(f"history     {', '.join(map(str, doc['history'])) or '-'}")
    print(f"tenants     {', '.join(doc['tenants']) or '-'}")
    for role, m in doc["metadata"].items():
        print(f"{role:<11} v{m['version']}, expires {m['expires']}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    e = _repo(args).promote()
    print(f"bundle {e.version} is now stable on every node")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    e = _repo(args).rollback(args.to)
    print(f"published bundle {e.version} with the content of bundle {args.to}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from datetime import timedelta

    repo = _repo(args)
    repo.refresh_timestamp()
    print(
        f"timestamp v{repo.timestamp.signed.version} expires "
        f"{repo.timestamp.signed.expires.isoformat()}"
    )
    # Root and targets are long-lived and renewed only by a key rotation or a publish;
    # the cron that runs this is where an operator will see that they are running out.
    for name, md in (("root", repo.root), ("targets", repo.targets)):
        if md.signed.expires - repo.now < timedelta(days=30):
            print(
                f"warning: {name} metadata expires {md.signed.expires.isoformat()}; "
                + ("rotate a key" if name == "root" else "publish")
                + " to renew it before nodes go stale",
                file=sys.stderr,
            )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    repo = _repo(args)
    key = repo.rotate_key(args.role)
    print(f"{args.role} key is now {key.keyid}; root v{repo.root.signed.version} published")
    return 0


def _tenant_add(args: argparse.Namespace) -> int:
    from edge.bundles.keys import Keyring, load_public
    from edge.bundles.model import tenant_role

    repo = _repo(args)
    if args.public_key:
        repo.add_tenant(args.tenant_id, load_public(args.public_key))
        print(f"tenants/{args.tenant_id}/* delegated to {args.public_key}")
        return 0
    tkeys = Keyring(args.tenant_keys or args.keys / "tenants" / args.tenant_id)
    name = tenant_role(args.tenant_id)
    key = tkeys.generate(name)
    repo.add_tenant(args.tenant_id, key, tkeys.signer(name))
    print(f"tenants/{args.tenant_id}/* delegated to the new key in {tkeys.dir}")
    return 0


def _tenant_publish(args: argparse.Namespace) -> int:
    from edge.bundles.keys import Keyring
    from edge.bundles.model import tenant_role
    from edge.bundles.repository import PublishError

    try:
        data = args.module.read_bytes()
    except OSError as e:
        raise PublishError(f"{args.module}: {e.strerror or e}") from None
    _check_wasm(args.module, data)
    repo = _repo(args)
    signer = Keyring(args.tenant_keys).signer(tenant_role(args.tenant_id))
    path = repo.publish_tenant_module(args.tenant_id, args.name or args.module.name, data, signer)
    print(f"published {path}")
    return 0


def _check_wasm(path: Path, data: bytes) -> None:
    from edge.bundles.repository import PublishError

    if data[:4] != b"\x00asm":
        raise PublishError(f"{path}: not a WebAssembly module")
    import wasmtime

    try:
        wasmtime.Module.validate(wasmtime.Engine(), data)
    except Exception as e:
        raise PublishError(f"{path}: invalid WebAssembly module: {e}") from None


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def call(args: argparse.Namespace) -> int:
        # Imported here: `edge --help` and `edge run` should not pay for TUF and the SDKs.
        from cloud.store import StoreError
        from edge.bundles.archive import ArchiveError
        from edge.bundles.keys import KeyFileError
        from edge.bundles.repository import PublishError

        prog = f"edge bundle {args.bundle_command}"
        try:
            return func(args)
        except ConfigError as e:
            for line in e.lines():
                print(line, file=sys.stderr)
            print(f"{prog}: configuration refused; nothing was published", file=sys.stderr)
            return EXIT_REFUSED
        except StoreError as e:
            print(f"{prog}: storage error: {e}", file=sys.stderr)
            return EXIT_STORAGE
        except (PublishError, KeyFileError, ArchiveError, ValueError) as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return EXIT_REFUSED

    return call
