"""The node bootstrap (terraform/bootstrap/edge-bootstrap.sh), run for real against a temporary
root: systemctl, useradd and chown are recorders (the host must not change), pip is either a
recorder or a real ``pip install --target`` of a wheel built from this checkout. The node config
it writes is loaded by ``edge.node_config``, the unit it installs is checked by
``systemd-analyze verify``, and the cloud-init template that carries it is rendered and parsed.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from edge.node_config import check, load_node_config
from tests.support.storage import server_env, store_url
from tests.support.terraform import (
    ANY_TEMPLATE_DIRECTIVE,
    BOOTSTRAP_SCRIPT,
    CLOUD_INIT_TEMPLATE,
    ROOT,
    TEMPLATE_EXPR,
    build_wheel,
    render_cloud_init,
)

TRUSTED_ROOT = json.dumps({"signed": {"_type": "root", "version": 1}, "signatures": []})
WHEEL_NAME = "edge_gateway-0.1.0-py3-none-any.whl"
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "Restart=on-failure",
    "LimitNOFILE=65536",
)

RECORDER = """#!{python}
import json, os, sys
with open(os.environ["RECORD_CALLS"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""

# pip that really installs, into a target dir: the proof that the wheel the script fetched is
# installable and carries edge. --no-deps/--no-index: the dependencies are on this host already.
REAL_PIP = """#!/bin/sh
printf '%s\\n' "[\\"pip\\", \\"$1\\"]" >> "$RECORD_CALLS"
exec {python} -m pip "$@" --quiet --no-deps --no-index --target "$EDGE_TEST_TARGET"
"""


@dataclass
class Run:
    root: Path
    proc: subprocess.CompletedProcess[str]
    calls: list[list[str]]

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    @property
    def unit(self) -> str:
        return self.path("/etc/systemd/system/edge.service").read_text()

    def called(self, name: str) -> list[list[str]]:
        return [c[1:] for c in self.calls if c[0] == name]


class Node:
    """A temporary root plus recorders; ``run(settings)`` runs the bootstrap against it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.bin = base / "bin"
        self.calls_file = base / "calls.jsonl"
        self.bin.mkdir()
        for name in ("systemctl", "useradd", "chown", "pip"):
            self._script(name, RECORDER.format(python=sys.executable))
        trusted = self.root / "etc/edge/trusted-root.json"
        trusted.parent.mkdir(parents=True)
        trusted.write_text(TRUSTED_ROOT)
        self.wheel = base / "dist" / WHEEL_NAME
        self.wheel.parent.mkdir()
        self.wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # replaced by a real wheel when needed
        self.env: dict[str, str] = {}

    def _script(self, name: str, text: str) -> Path:
        p = self.bin / name
        p.write_text(text)
        p.chmod(0o755)
        return p

    def use_real_pip(self, wheel: Path, target: Path) -> None:
        shutil.copy(wheel, self.wheel)
        self._script("pip", REAL_PIP.format(python=sys.executable))
        self.env["EDGE_TEST_TARGET"] = str(target)

    def run(self, settings: dict[str, str], *, check_ok: bool = True) -> Run:
        settings_file = self.base / "bootstrap.env"
        settings_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.calls_file.write_text("")
        env = {
            "PATH": os.environ["PATH"],
            "EDGE_ROOT": str(self.root),
            "SYSTEMCTL": str(self.bin / "systemctl"),
            "USERADD": str(self.bin / "useradd"),
            "CHOWN": str(self.bin / "chown"),
            "PIP": str(self.bin / "pip"),
            "PYTHON": sys.executable,
            "RECORD_CALLS": str(self.calls_file),
            **self.env,
        }
        proc = subprocess.run(
            ["bash", str(BOOTSTRAP_SCRIPT), str(settings_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        calls = [json.loads(line) for line in self.calls_file.read_text().splitlines()]
        if check_ok:
            assert proc.returncode == 0, proc.stderr
        return Run(self.root, proc, calls)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def aws_settings(node: Node) -> dict[str, str]:
    """What modules/aws-edge-fleet renders, with the wheel on local disk instead of S3."""
    return {
        "EDGE_INSTALL_FROM": "wheel",
        "EDGE_WHEEL_URL": f"file://{node.wheel}",
        "EDGE_PACKAGE": "edge-gateway==0.1.0",
        "EDGE_INDEX_URL": "",
        "EDGE_BUNDLE_SOURCE": "s3://example-edge-bundles/bundles",
        "EDGE_TRUSTED_ROOT": "/etc/edge/trusted-root.json",
        "EDGE_PROXY_PROTOCOL": "v2",
        "EDGE_TRUSTED_PROXIES": "10.20.0.0/16",
        "EDGE_HTTP_PORT": "8080",
        "EDGE_TLS_PORT": "443",
        "EDGE_ADMIN_ADDRESS": "0.0.0.0:9090",
        "EDGE_WORKERS": "",
        "EDGE_LOG_LEVEL": "info",
        "EDGE_POLL_INTERVAL": "30",
        "EDGE_AWS_REGION": "eu-west-1",
        "EDGE_NODE_ID": "i-0123456789abcdef0",
    }


def gcp_settings() -> dict[str, str]:
    """What modules/gcp-edge-fleet renders for lb_mode = tcp_proxy, installing from an index."""
    return {
        "EDGE_INSTALL_FROM": "index",
        "EDGE_WHEEL_URL": "",
        "EDGE_PACKAGE": "edge-gateway==0.1.0",
        "EDGE_INDEX_URL": "https://pypi.example.internal/simple",
        "EDGE_BUNDLE_SOURCE": "gs://example-edge-bundles/bundles",
        "EDGE_TRUSTED_ROOT": "/etc/edge/trusted-root.json",
        "EDGE_PROXY_PROTOCOL": "v1",
        "EDGE_TRUSTED_PROXIES": "35.191.0.0/16,130.211.0.0/22",
        "EDGE_HTTP_PORT": "8080",
        "EDGE_TLS_PORT": "8443",
        "EDGE_ADMIN_ADDRESS": "0.0.0.0:9090",
        "EDGE_WORKERS": "2",
        "EDGE_LOG_LEVEL": "warning",
        "EDGE_POLL_INTERVAL": "15",
        "EDGE_NODE_ID": "edge-node-abcd",
    }


# --- the script itself


def test_shellcheck_passes_on_the_bootstrap_script() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run(
        ["shellcheck", "--severity=style", "--shell=bash", str(BOOTSTRAP_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.access(BOOTSTRAP_SCRIPT, os.X_OK), "the script must be executable"


def _decode_write_files(rendered: str) -> tuple[dict, dict[str, str]]:
    doc = yaml.safe_load(rendered)
    files = {f["path"]: f for f in doc["write_files"]}
    decoded = {}
    for path, f in files.items():
        assert f["encoding"] == "gz+b64", path
        decoded[path] = gzip.decompress(base64.b64decode(f["content"])).decode()
    return doc, decoded


def test_cloud_init_template_renders_to_cloud_config_carrying_the_script() -> None:
    template = CLOUD_INIT_TEMPLATE.read_text()
    # only ${base64gzip(input)} directives, so no value can break the YAML structure
    assert len(ANY_TEMPLATE_DIRECTIVE.findall(template)) == len(TEMPLATE_EXPR.findall(template))
    assert set(TEMPLATE_EXPR.findall(template)) == {"bootstrap_script", "settings", "trusted_root"}
    script = BOOTSTRAP_SCRIPT.read_text()
    settings = "EDGE_BUNDLE_SOURCE=s3://b/p\nEDGE_PROXY_PROTOCOL=v2\n"
    rendered = render_cloud_init(script, settings, TRUSTED_ROOT)
    assert rendered.startswith("#cloud-config\n")
    doc, decoded = _decode_write_files(rendered)
    files = {f["path"]: f for f in doc["write_files"]}
    # the script delivered is byte for byte the one shellcheck passed
    assert decoded["/usr/local/sbin/edge-bootstrap.sh"] == script
    assert files["/usr/local/sbin/edge-bootstrap.sh"]["permissions"] == "0755"
    assert decoded["/etc/edge/bootstrap.env"] == settings
    assert files["/etc/edge/bootstrap.env"]["permissions"] == "0600"
    assert json.loads(decoded["/etc/edge/trusted-root.json"])["signed"]["_type"] == "root"
    assert doc["runcmd"] == [["/usr/local/sbin/edge-bootstrap.sh", "/etc/edge/bootstrap.env"]]
    assert "python3-venv" in doc["packages"]


# EC2 refuses user data over 16 KiB (before its base64 encoding); GCE metadata allows 256 KiB.
EC2_USER_DATA_LIMIT = 16 * 1024


def test_user_data_with_a_real_root_fits_ec2(tmp_path: Path) -> None:
    # a real root.json, from the publishing CLI, with three root keys (a threshold of two)
    keys = tmp_path / "keys"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "bundle",
            "init",
            "--store",
            f"file://{tmp_path}/repo",
            "--keys",
            str(keys),
            "--threshold",
            "2",
            "--root-keys",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    root = (keys / "root.json").read_text()
    assert json.loads(root)["signed"]["_type"] == "root"
    settings = "".join(f"{k}={v}\n" for k, v in gcp_settings().items())
    rendered = render_cloud_init(BOOTSTRAP_SCRIPT.read_text(), settings, root)
    size = len(rendered.encode())
    assert size < EC2_USER_DATA_LIMIT * 3 // 4, f"user data {size} bytes: keep headroom"
    _, decoded = _decode_write_files(rendered)
    assert decoded["/etc/edge/trusted-root.json"] == root


# --- AWS-shaped run: wheel, PROXY v2, TLS on 443


@pytest.fixture(scope="module")
def aws_node(tmp_path_factory: pytest.TempPathFactory) -> Node:
    return Node(tmp_path_factory.mktemp("aws"))


@pytest.fixture(scope="module")
def aws_run(aws_node: Node) -> Run:
    """One run shared by the read-only checks below."""
    return aws_node.run(aws_settings(aws_node))


def test_installs_edge_from_the_wheel(aws_run: Run, aws_node: Node) -> None:
    installed = aws_run.path(f"/opt/edge/dist/{WHEEL_NAME}")
    assert installed.read_bytes() == aws_node.wheel.read_bytes()
    assert aws_run.called("pip") == [["install", "--no-input", str(installed)]]


def test_creates_a_system_user(aws_run: Run) -> None:
    (useradd,) = aws_run.called("useradd")
    assert "--system" in useradd and useradd[-1] == "edge"
    assert useradd[useradd.index("--shell") + 1] == "/usr/sbin/nologin"
    assert ["edge:edge", str(aws_run.path("/var/lib/edge"))] in aws_run.called("chown")
    assert ["root:edge", str(aws_run.path("/etc/edge/node.yaml"))] in aws_run.called("chown")


def test_writes_a_node_config_edge_loads(aws_run: Run) -> None:
    path = aws_run.path("/etc/edge/node.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    node = load_node_config(path)
    assert check(node) == []  # require_source: a bundle source is there
    http, tls = node.listeners
    assert (http.address, http.tls) == ("0.0.0.0:8080", False)
    assert (tls.address, tls.tls) == ("0.0.0.0:443", True)
    for lst in node.listeners:
        assert lst.proxy_protocol == "v2"
        assert lst.trusted_proxies == ["10.20.0.0/16"]
    assert node.admin == "0.0.0.0:9090"
    assert node.workers is None
    assert node.state_dir == "/var/lib/edge"
    assert node.bundle_source == "s3://example-edge-bundles/bundles"
    assert node.trusted_root == "/etc/edge/trusted-root.json"
    assert node.poll_interval == 30
    assert node.node_id == "i-0123456789abcdef0"
    assert node.log_level == "info"


def test_installs_a_hardened_unit_and_starts_it(aws_run: Run) -> None:
    unit = aws_run.unit
    lines = set(unit.splitlines())
    for directive in HARDENING:
        assert directive in lines, directive
    assert "User=edge" in lines
    assert "ReadWritePaths=/var/lib/edge" in lines
    assert "ExecStart=/opt/edge/venv/bin/edge run --node /etc/edge/node.yaml" in lines
    assert "Environment=AWS_DEFAULT_REGION=eu-west-1" in lines
    # port 443 is below 1024: exactly one capability, as an ambient one for the non-root user
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in lines
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in lines
    assert aws_run.called("systemctl") == [
        ["daemon-reload"],
        ["enable", "edge.service"],
        ["restart", "edge.service"],
    ]
    assert stat.S_IMODE(aws_run.path("/var/lib/edge").stat().st_mode) == 0o750


def _verify_unit(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # verify resolves ExecStart on this host, where edge lives in the test environment, not
    # in /opt/edge/venv: point it at the installed console script, keep everything else.
    edge_bin = Path(sys.executable).parent / "edge"
    if not edge_bin.exists():
        edge_bin = Path(shutil.which("edge") or "/nonexistent/edge")
    unit = tmp_path / "edge.service"
    unit.write_text(unit_text.replace("/opt/edge/venv/bin/edge", str(edge_bin)))
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not on this machine; the unit's syntax is not verified",
)
def test_systemd_analyze_accepts_the_unit(aws_run: Run, tmp_path: Path) -> None:
    proc = _verify_unit(aws_run.unit, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    # verify only warns about unknown keys or bad values; any remark about our unit is a bug
    assert "edge.service" not in output, output


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_catches_a_broken_unit(aws_run: Run, tmp_path: Path) -> None:
    broken = aws_run.unit.replace("NoNewPrivileges=yes", "NoNewPrivileges=yes\nProtectSystm=strict")
    proc = _verify_unit(broken, tmp_path)
    assert "ProtectSystm" in proc.stdout + proc.stderr


def test_rerun_converges_without_recreating_the_user(node: Node) -> None:
    first = node.run(aws_settings(node))
    passwd = node.root / "etc/passwd"
    passwd.write_text("edge:x:998:998::/var/lib/edge:/usr/sbin/nologin\n")
    config = first.path("/etc/edge/node.yaml").read_text()
    second = node.run(aws_settings(node))
    assert second.called("useradd") == []
    assert second.path("/etc/edge/node.yaml").read_text() == config
    assert ["restart", "edge.service"] in second.called("systemctl")
    leftovers = [p.name for p in (node.root / "etc/edge").iterdir() if ".yaml." in p.name]
    assert leftovers == [], "temporary files left behind"


# --- GCP-shaped run: package index, PROXY v1, unprivileged ports


def test_index_install_proxy_v1_and_no_capabilities(node: Node) -> None:
    run = node.run(gcp_settings())
    assert run.called("pip") == [
        [
            "install",
            "--no-input",
            "--index-url",
            "https://pypi.example.internal/simple",
            "edge-gateway==0.1.0",
        ]
    ]
    assert not (node.root / "opt/edge/dist").exists()
    cfg = load_node_config(run.path("/etc/edge/node.yaml"))
    assert check(cfg) == []
    assert [lst.proxy_protocol for lst in cfg.listeners] == ["v1", "v1"]
    assert cfg.listeners[0].trusted_proxies == ["35.191.0.0/16", "130.211.0.0/22"]
    assert cfg.workers == 2 and cfg.log_level == "warning" and cfg.poll_interval == 15
    lines = set(run.unit.splitlines())
    assert "CapabilityBoundingSet=" in lines
    assert not any(line.startswith("AmbientCapabilities") for line in lines)
    assert not any(line.startswith("Environment=AWS_DEFAULT_REGION") for line in lines)


def test_passthrough_without_proxy_protocol(node: Node) -> None:
    settings = {**gcp_settings(), "EDGE_PROXY_PROTOCOL": "off", "EDGE_TRUSTED_PROXIES": ""}
    run = node.run(settings)
    text = run.path("/etc/edge/node.yaml").read_text()
    assert 'proxy_protocol: "off"' in text  # quoted: bare off is a YAML 1.1 boolean
    cfg = load_node_config(run.path("/etc/edge/node.yaml"))
    assert [(lst.proxy_protocol, lst.trusted_proxies) for lst in cfg.listeners] == [
        ("off", []),
        ("off", []),
    ]


# --- the wheel fetched from a real object store (moto_server, gcp-storage-emulator)


@pytest.mark.parametrize("kind", ["s3", "gs"])
def test_fetches_the_wheel_from_the_bundle_bucket(
    node: Node, kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with store_url(kind, monkeypatch, tmp_path) as url:
        bucket = url.split("/")[2]
        key = f"dist/{WHEEL_NAME}"
        payload = b"a wheel, as far as the fetch is concerned\n"
        if kind == "s3":
            import boto3

            boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=payload)
        else:
            from google.cloud import storage

            storage.Client().bucket(bucket).blob(key).upload_from_string(payload)
        # the SDK comes from this test environment instead of the node's virtualenv
        node.env.update(server_env(kind), FETCH_PYTHON=sys.executable)
        run = node.run({**aws_settings(node), "EDGE_WHEEL_URL": f"{kind}://{bucket}/{key}"})
    fetched = run.path(f"/opt/edge/dist/{WHEEL_NAME}")
    assert fetched.read_bytes() == payload
    sdk = "boto3" if kind == "s3" else "google-cloud-storage"
    assert run.called("pip") == [
        ["install", "--no-input", "--quiet", sdk],
        ["install", "--no-input", str(fetched)],
    ]


def test_a_missing_wheel_stops_the_bootstrap(
    node: Node, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with store_url("s3", monkeypatch, tmp_path) as url:
        bucket = url.split("/")[2]
        node.env.update(server_env("s3"), FETCH_PYTHON=sys.executable)
        settings = {**aws_settings(node), "EDGE_WHEEL_URL": f"s3://{bucket}/dist/{WHEEL_NAME}"}
        run = node.run(settings, check_ok=False)
    assert run.proc.returncode != 0
    wheel_url = settings["EDGE_WHEEL_URL"]
    assert f"edge-bootstrap: error: EDGE_WHEEL_URL: cannot fetch {wheel_url}" in run.proc.stderr
    assert "404" in run.proc.stderr, run.proc.stderr  # the store's own reason, on one line
    assert "Traceback" not in run.proc.stderr
    assert run.called("systemctl") == []
    assert not run.path("/etc/systemd/system/edge.service").exists()


# --- a real pip install of a wheel built from this checkout


@pytest.fixture(scope="module")
def edge_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


def test_real_pip_installs_the_fetched_wheel_and_its_edge_loads_the_config(
    node: Node, edge_wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    node.use_real_pip(edge_wheel, target)
    run = node.run(aws_settings(node))
    assert (target / "edge" / "node_config.py").is_file()
    assert (target / "cloud").is_dir()
    # the edge that was installed (not the checkout) accepts the config the script wrote
    probe = (
        "import sys; from edge import node_config as nc; "
        "assert nc.__file__.startswith(sys.argv[2]), nc.__file__; "
        "n = nc.load_node_config(sys.argv[1]); assert nc.check(n) == [], nc.check(n); "
        "print(n.bundle_source)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(run.path("/etc/edge/node.yaml")), str(target)],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "s3://example-edge-bundles/bundles"


# --- hostile or broken settings: a precise error, and nothing installed


BAD_SETTINGS = [
    ({"EDGE_HTTP_PORT": "70000"}, "EDGE_HTTP_PORT: '70000' is not a port"),
    ({"EDGE_HTTP_PORT": "80 "}, "EDGE_HTTP_PORT"),
    ({"EDGE_PROXY_PROTOCOL": "v3"}, "EDGE_PROXY_PROTOCOL: 'v3' is not one of v1, v2, off"),
    ({"EDGE_TRUSTED_PROXIES": ""}, "EDGE_TRUSTED_PROXIES: at least one CIDR is required"),
    ({"EDGE_TRUSTED_PROXIES": "10.0.0.0/8,evil"}, "EDGE_TRUSTED_PROXIES: 'evil' is not a CIDR"),
    ({"EDGE_NODE_ID": 'a"; touch /tmp/pwned; "'}, "EDGE_NODE_ID"),
    ({"EDGE_BUNDLE_SOURCE": 's3://b/p"x'}, "EDGE_BUNDLE_SOURCE: 's3://b/p\"x' is not"),
    # a newline cannot smuggle a YAML key: the second half is a malformed settings line
    ({"EDGE_BUNDLE_SOURCE": "s3://b/p\nadmin: x"}, "expected KEY=VALUE"),
    ({"EDGE_BUNDLE_SOURCE": ""}, "EDGE_BUNDLE_SOURCE: required"),
    ({"EDGE_INSTALL_FROM": "curl"}, "EDGE_INSTALL_FROM: 'curl' is not one of wheel, index"),
    ({"EDGE_WHEEL_URL": "s3://b/edge.tar.gz"}, "does not name a .whl file"),
    ({"EDGE_LOG_LEVEL": "critical"}, "EDGE_LOG_LEVEL"),
    ({"EDGE_USER": "root"}, "EDGE_USER: the service must not run as root"),
    ({"EDGE_INDEX_URL": "http://pypi.example/simple"}, "EDGE_INDEX_URL"),
    ({"EDGE_ADMIN_ADDRESS": "0.0.0.0"}, "EDGE_ADMIN_ADDRESS: '0.0.0.0' is not HOST:PORT"),
]


@pytest.mark.parametrize(("override", "message"), BAD_SETTINGS, ids=[m for _, m in BAD_SETTINGS])
def test_bad_settings_are_refused_before_anything_is_written(
    node: Node, override: dict[str, str], message: str
) -> None:
    settings = {**aws_settings(node), **override}
    run = node.run(settings, check_ok=False)
    assert run.proc.returncode == 1
    assert message in run.proc.stderr, run.proc.stderr
    assert run.calls == []
    assert not (node.root / "etc/edge/node.yaml").exists()
    assert not (node.root / "etc/systemd").exists()


def test_unknown_setting_names_file_and_line(node: Node) -> None:
    settings = {**aws_settings(node), "EDGE_LISTEN": "0.0.0.0:80"}
    run = node.run(settings, check_ok=False)
    line = list(settings).index("EDGE_LISTEN") + 1
    assert f"bootstrap.env:{line}: unknown setting 'EDGE_LISTEN'" in run.proc.stderr


def test_a_value_is_data_never_code(node: Node, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    settings = {**aws_settings(node), "EDGE_PACKAGE": f"$(touch {marker})"}
    settings["EDGE_INSTALL_FROM"] = "index"
    run = node.run(settings, check_ok=False)
    assert run.proc.returncode == 1
    assert "EDGE_PACKAGE" in run.proc.stderr
    assert not marker.exists()


def test_missing_or_foreign_trusted_root_is_refused(node: Node) -> None:
    trusted = node.root / "etc/edge/trusted-root.json"
    trusted.write_text(json.dumps({"signed": {"_type": "timestamp"}}))
    run = node.run(aws_settings(node), check_ok=False)
    assert "EDGE_TRUSTED_ROOT: /etc/edge/trusted-root.json is not TUF root metadata" in (
        run.proc.stderr
    )
    trusted.unlink()
    run = node.run(aws_settings(node), check_ok=False)
    assert "EDGE_TRUSTED_ROOT: /etc/edge/trusted-root.json is missing or empty" in run.proc.stderr
    assert run.called("pip") == [] and run.called("systemctl") == []
