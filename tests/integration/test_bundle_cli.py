"""`edge bundle ...` as operators run it, and `edge run --bundle-source` as nodes run it:
real processes, real stores on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cloud.store import open_store
from edge import config_source
from edge.bundles.archive import pack
from edge.bundles.keys import Keyring
from edge.bundles.repository import Repository
from edge.bundles.sync import BundleSync
from edge.cli import main
from tests.support.lifecycle import LoadClient, metric_samples, status, workers_on
from tests.support.procs import ROOT, SHARED, EdgeProcess, free_port, http_get, wait_until
from tests.support.storage import server_env, store_url
from tests.support.upstream import Upstream


def edge_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``edge bundle ARGS`` through the real CLI entry (``edge.cli.main``) in this
    process: the same code path as the console script without paying an interpreter
    start per call. ``test_console_script`` covers the real process."""
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["bundle", *args])
            except SystemExit as e:  # argparse: --help, usage errors
                code = int(e.code or 0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_console_script(tmp_path: Path) -> None:
    store, keys = str(tmp_path / "store"), str(tmp_path / "keys")
    run = [sys.executable, "-m", "edge", "bundle"]
    r = subprocess.run(
        [*run, "init", "--store", store, "--keys", keys],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*run, "status", "--store", store, "--keys", keys, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["metadata"]["root"]["version"] == 1


def write_config(
    d: Path, upstream_port: int, version: str, uris: tuple[str, ...] = ("/x",)
) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": version,
        "upstreams": [{"id": "u", "nodes": [{"host": "127.0.0.1", "port": upstream_port}]}],
        "routes": [{"id": f"r{i}", "uri": u, "upstream_id": "u"} for i, u in enumerate(uris)],
    }
    (d / "edge.yaml").write_text(yaml.safe_dump(doc))
    return d


def test_every_subcommand_has_help() -> None:
    for sub in [
        [],
        ["init"],
        ["publish"],
        ["status"],
        ["promote"],
        ["rollback"],
        ["refresh-timestamp"],
        ["rotate-key"],
        ["tenant"],
        ["tenant", "add"],
        ["tenant", "publish-plugin"],
    ]:
        r = edge_cli(*sub, "--help")
        assert r.returncode == 0, r.stderr
        assert "usage: edge bundle" in r.stdout


@pytest.mark.parametrize("kind", ["file", "s3", "gs"])
def test_operator_flow(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = server_env(kind)
    with store_url(kind, monkeypatch, tmp_path) as url:
        keys = str(tmp_path / "keys")
        r = edge_cli("init", "--store", url, "--keys", keys, "--threshold", "2", env=env)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "keys" / "root.json").is_file()
        assert edge_cli("init", "--store", url, "--keys", keys, env=env).returncode == 1

        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "edge.yaml").write_text("routes:\n  - id: r\n    uri: /a\n    upstream_id: nope\n")
        r = edge_cli("publish", str(bad), "--store", url, "--keys", keys, env=env)
        assert r.returncode == 1
        assert f"{bad}/edge.yaml: routes[0].upstream_id" in r.stderr
        assert "nothing was published" in r.stderr

        good = write_config(tmp_path / "good", 8080, "v1")
        r = edge_cli("publish", str(good), "--store", url, "--keys", keys, env=env)
        assert r.returncode == 0, r.stderr
        assert "published bundle 1 (stable)" in r.stdout
        if kind != "file":
            # The rest is store-independent repository logic, covered on the local store;
            # every CLI call costs a process start, so it runs once.
            r = edge_cli("status", "--store", url, "--keys", keys, "--json", env=env)
            assert json.loads(r.stdout)["stable"]["version"] == 1
            return
        write_config(good, 8080, "v2")
        r = edge_cli(
            "publish", str(good), "--store", url, "--keys", keys, "--canary", "10", env=env
        )
        assert "published bundle 2 (canary for 10% of nodes)" in r.stdout, r.stderr

        r = edge_cli("status", "--store", url, "--keys", keys, "--json", env=env)
        doc = json.loads(r.stdout)
        assert doc["stable"]["version"] == 1 and doc["canary"]["version"] == 2
        assert doc["canary"]["canary_percent"] == 10
        r = edge_cli("status", "--store", url, env=env)
        assert "canary      version 2, 10% of nodes" in r.stdout and "(root not pinned)" in r.stdout

        assert edge_cli("promote", "--store", url, "--keys", keys, env=env).returncode == 0
        r = edge_cli("promote", "--store", url, "--keys", keys, env=env)
        assert r.returncode == 1 and "no canary" in r.stderr
        r = edge_cli("rollback", "--store", url, "--keys", keys, "--to", "1", env=env)
        assert "published bundle 3 with the content of bundle 1" in r.stdout, r.stderr
        r = edge_cli("rollback", "--store", url, "--keys", keys, "--to", "9", env=env)
        assert r.returncode == 1 and "version 9" in r.stderr
        assert (
            edge_cli("refresh-timestamp", "--store", url, "--keys", keys, env=env).returncode == 0
        )
        r = edge_cli("status", "--store", url, "--keys", keys, "--json", env=env)
        doc = json.loads(r.stdout)
        assert doc["stable"] == {**doc["stable"], "version": 3, "rolled_back_from": 1}
        assert doc["history"] == [1, 2]


def test_tenant_commands(tmp_path: Path) -> None:
    url, keys = str(tmp_path / "store"), str(tmp_path / "keys")
    assert edge_cli("init", "--store", url, "--keys", keys).returncode == 0
    r = edge_cli("tenant", "add", "acme", "--store", url, "--keys", keys)
    assert r.returncode == 0, r.stderr
    tkeys = tmp_path / "keys" / "tenants" / "acme"
    assert (tkeys / "tenant-acme.pem").is_file()
    wasm = tmp_path / "auth.wasm"
    wasm.write_bytes(b"\x00asm\x01\x00\x00\x00")
    r = edge_cli(
        "tenant",
        "publish-plugin",
        "acme",
        str(wasm),
        "--store",
        url,
        "--keys",
        keys,
        "--tenant-keys",
        str(tkeys),
    )
    assert r.returncode == 0, r.stderr
    assert "published tenants/acme/auth.wasm" in r.stdout
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm")
    r = edge_cli(
        "tenant",
        "publish-plugin",
        "acme",
        str(junk),
        "--store",
        url,
        "--keys",
        keys,
        "--tenant-keys",
        str(tkeys),
    )
    assert r.returncode == 1 and f"{junk}: not a WebAssembly module" in r.stderr
    # Another tenant's key cannot publish for acme.
    assert edge_cli("tenant", "add", "other", "--store", url, "--keys", keys).returncode == 0
    r = edge_cli(
        "tenant",
        "publish-plugin",
        "acme",
        str(wasm),
        "--store",
        url,
        "--keys",
        keys,
        "--tenant-keys",
        str(tmp_path / "keys" / "tenants" / "other"),
    )
    assert r.returncode == 1 and "tenant-acme.pub.json: no such public key file" in r.stderr


def test_storage_down_during_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = server_env("s3")
    with store_url("s3", monkeypatch, tmp_path) as url:
        keys = str(tmp_path / "keys")
        assert edge_cli("init", "--store", url, "--keys", keys, env=env).returncode == 0
        cfg = write_config(tmp_path / "cfg", 8080, "v1")
        down = {
            **env,
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
            "AWS_SECRET_ACCESS_KEY": "s3cr3t-never-printed",
        }
        r = edge_cli("publish", str(cfg), "--store", url, "--keys", keys, env=down)
        assert r.returncode == 3, r.stderr
        assert f"storage error: {url}" in r.stderr
        assert "s3cr3t-never-printed" not in r.stderr + r.stdout
        r = edge_cli("status", "--store", url, "--keys", keys, "--json", env=env)
        assert json.loads(r.stdout)["stable"] is None  # nothing half-published


# -- the node ---------------------------------------------------------------------------------


def _node(
    url: str,
    root: Path,
    *,
    env: dict[str, str] | None = None,
    state: Path | None = None,
    ready: bool = True,
) -> EdgeProcess:
    extra = [
        "--bundle-source",
        url,
        "--trusted-root",
        str(root),
        "--poll-interval",
        "0.2",
        "--node-id",
        "node-a",
        "--grace-period",
        "2",
    ]
    if state is not None:
        extra += ["--state-dir", str(state)]
    return EdgeProcess(None, extra_args=extra, env=env, ready=ready)


def _bundle(edge: EdgeProcess) -> dict[str, object]:
    return status(edge)["bundle"]


def test_gateway_switches_bundles_under_load(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    keys = Keyring(tmp_path / "keys")
    root = Repository(store, keys).init()
    with Upstream() as up:
        Repository(store, keys).load().publish_bundle(
            pack(write_config(tmp_path / "c1", up.port, "v1"))
        )
        with _node(str(tmp_path / "store"), root) as edge:
            gen = status(edge)["config"]["generation"]
            # /readyz turned 200 only once every worker serves the bundle
            assert http_get(edge.url + "/x")[0] == 200
            load = LoadClient(edge.port, "/x", max_requests=20_000).start()
            try:
                wait_until(lambda: load.done > 50, 30, "load running")
                for i, v in enumerate(["v2", "v3", "v4"], start=2):
                    cfg = write_config(tmp_path / f"c{i}", up.port, v, ("/x", f"/{v}"))
                    Repository(store, keys).load().publish_bundle(pack(cfg))
                    wait_until(lambda i=i: _bundle(edge)["version"] == i, 30, f"bundle {i}")
                    gen += 1
                    wait_until(lambda g=gen: workers_on(edge, g), 30, f"generation {gen}")
                    before = load.done
                    wait_until(lambda b=before: load.done > b + 50, 30, "load after the swap")
                    assert http_get(edge.url + f"/{v}")[0] == 200
                # A correctly signed but invalid bundle: refused, v4 keeps serving.
                bad = tmp_path / "bad"
                bad.mkdir()
                (bad / "edge.yaml").write_text("routes:\n  - {id: r, uri: /x, upstream_id: nope}\n")
                Repository(store, keys).load().publish_bundle(pack(bad))
                wait_until(
                    lambda: _bundle(edge)["consecutive_failures"].get("config", 0) > 0,
                    30,
                    "bad bundle rejected",
                )
                before = load.done
                wait_until(lambda: load.done > before + 50, 30, "load after the rejection")
            finally:
                load.stop()
            assert load.failures == []
            doc = _bundle(edge)
            assert doc["version"] == 4 and "upstream_id" in str(doc["last_error"])
            assert http_get(edge.url + "/v4")[0] == 200
            samples = metric_samples(edge)
            assert samples[("edge_bundle_version", ())] == 4
            assert samples[("edge_bundle_stale", ())] == 0
            assert samples[("edge_bundle_consecutive_failures", (("reason", "config"),))] >= 1
            assert samples[("edge_bundle_updates_total", (("result", "installed"),))] == 4


async def test_cold_start_with_storage_down_serves_last_known_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = server_env("s3")
    with store_url("s3", monkeypatch, tmp_path) as url, Upstream() as up:
        keys = Keyring(tmp_path / "keys")
        root = Repository(open_store(url), keys).init()
        Repository(open_store(url), keys).load().publish_bundle(
            pack(write_config(tmp_path / "c1", up.port, "v1"))
        )
        # The node's own sync code fills the state directory, as a node that ran before.
        state = tmp_path / "state"
        sync = BundleSync(url, root, state, "node-a")

        def install(path: Path) -> None:
            config_source.compile_path(path, node_id="node-a", shared={"role": "test"})

        await sync.start(install, lambda k, v: None)
        assert await sync.poll_once(install) == "installed"
        down = {**env, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}"}
        with _node(url, root, env=down, state=state) as edge:  # waits for /readyz 200
            assert http_get(edge.url + "/x")[0] == 200  # ready means serving
            wait_until(
                lambda: _bundle(edge)["consecutive_failures"].get("storage", 0) >= 1,
                30,
                "storage failure reported",
            )
            assert _bundle(edge)["version"] == 1


def test_node_with_nothing_verified_is_not_ready(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    root = Repository(store, Keyring(tmp_path / "keys")).init()
    with _node(str(tmp_path / "store"), root, ready=False) as edge:
        wait_until(lambda: http_get(edge.admin_url + "/status")[0] == 200, 30, "admin up")
        wait_until(
            lambda: status(edge)["bundle"].get("last_check_ok_at") is not None, 30, "a check"
        )
        assert http_get(edge.admin_url + "/readyz")[0] == 503
        wait_until(lambda: status(edge)["workers"][0]["ready"], 30, "worker up")
        assert http_get(edge.url + "/x")[0] == 503


async def test_tenant_module_used_by_a_published_configuration(tmp_path: Path) -> None:
    """A tenant publishes a real proxy-wasm module; the operator's configuration uses it;
    publish compiles it through the WASM host and a node receives it beside the config."""
    module = SHARED / "wasm-corpus" / "tinygo_add_req_header.wasm"
    url, keys = str(tmp_path / "store"), tmp_path / "keys"
    assert edge_cli("init", "--store", url, "--keys", str(keys)).returncode == 0
    assert edge_cli("tenant", "add", "acme", "--store", url, "--keys", str(keys)).returncode == 0
    cfg = write_config(tmp_path / "cfg", 8080, "v1")
    doc = yaml.safe_load((cfg / "edge.yaml").read_text())
    doc["tenants"] = [{"id": "acme"}]
    doc["wasm_plugins"] = [
        {
            "name": "addhdr",
            "file": "tenants/acme/add.wasm",
            "sha256": hashlib.sha256(module.read_bytes()).hexdigest(),
            "tenant": "acme",
        }
    ]
    doc["routes"][0]["plugins"] = {"addhdr": {}}
    (cfg / "edge.yaml").write_text(yaml.safe_dump(doc))

    # Not published by the tenant yet: refused, naming the operator's file and the field.
    r = edge_cli("publish", str(cfg), "--store", url, "--keys", str(keys))
    assert r.returncode == 1
    assert f"{cfg}/edge.yaml: wasm_plugins[0]" in r.stderr, r.stderr

    tkeys = keys / "tenants" / "acme"
    r = edge_cli(
        "tenant",
        "publish-plugin",
        "acme",
        str(module),
        "--name",
        "add.wasm",
        "--store",
        url,
        "--keys",
        str(keys),
        "--tenant-keys",
        str(tkeys),
    )
    assert r.returncode == 0, r.stderr
    r = edge_cli("publish", str(cfg), "--store", url, "--keys", str(keys))
    assert r.returncode == 0, r.stderr

    sync = BundleSync(url, keys / "root.json", tmp_path / "state", "node-a")
    installed: list[Path] = []

    def install(path: Path) -> None:
        config_source.compile_path(path, node_id="node-a", shared={"role": "test"})
        installed.append(path)

    await sync.start(install, lambda k, v: None)
    assert await sync.poll_once(install) == "installed"
    assert (installed[0] / "tenants/acme/add.wasm").read_bytes() == module.read_bytes()


def test_errors_name_the_file(tmp_path: Path) -> None:
    url, keys = str(tmp_path / "store"), tmp_path / "keys"
    cfg = write_config(tmp_path / "cfg", 8080, "v1")
    r = edge_cli("publish", str(cfg), "--store", url, "--keys", str(keys))
    assert r.returncode == 1 and f"{keys}/root.json: cannot read the pinned root" in r.stderr
    assert edge_cli("init", "--store", url, "--keys", str(keys)).returncode == 0
    (keys / "targets.pem").unlink()
    r = edge_cli("publish", str(cfg), "--store", url, "--keys", str(keys))
    assert r.returncode == 1 and "no private key for targets" in r.stderr
    r = edge_cli("publish", str(cfg), "--store", url, "--keys", str(keys), "--canary", "0")
    assert r.returncode == 2 and "--canary" in r.stderr
    r = edge_cli("publish", str(tmp_path), "--store", url, "--keys", str(keys))
    assert r.returncode == 1 and f"{tmp_path}: CONFIG_DIR must be a directory" in r.stderr
    (cfg / "tenants").mkdir()
    r = edge_cli("publish", str(cfg), "--store", url, "--keys", str(keys))
    assert r.returncode == 1 and f"{cfg}: tenants: reserved" in r.stderr
    r = edge_cli("status", "--store", "ftp://nowhere/x")
    assert r.returncode == 1 and "unsupported store scheme" in r.stderr
