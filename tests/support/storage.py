"""Real object-storage servers for tests: moto_server (S3) and gcp-storage-emulator (GCS).

Each server is started once per test process on a free 127.0.0.1 port, polled until it
answers, and stopped at exit. Tests get a fresh bucket each and the environment the SDKs
read (``AWS_ENDPOINT_URL_S3``, ``STORAGE_EMULATOR_HOST``), so the code under test runs
unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import free_port, wait_until

_counter = itertools.count()


class Server:
    def __init__(self, name: str, argv: list[str], port: int, probe: str) -> None:
        self.name = name
        self.port = port
        self.probe = probe
        self.tmp = Path(tempfile.mkdtemp(prefix=f"edge-{name}-"))
        self.log_path = self.tmp / "server.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.tmp)
        try:
            wait_until(self._up, 30.0, f"{name} on 127.0.0.1:{port}")
        except TimeoutError:
            self.stop()
            raise

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(self.endpoint + self.probe, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered: that is all readiness means here

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


_servers: dict[str, Server] = {}


def _script(name: str) -> str:
    """A console script of the running Python's environment (a venv need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


def _server(name: str) -> Server:
    if name not in _servers:
        port = free_port()
        if name == "s3":
            exe = _script("moto_server")
            argv = [exe, "-H", "127.0.0.1", "-p", str(port)]
            _servers[name] = Server(name, argv, port, "/moto-api/")
        else:
            exe = _script("gcp-storage-emulator")
            argv = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"]
            _servers[name] = Server(name, argv, port, "/")
        atexit.register(_servers[name].stop)
    return _servers[name]


def s3_env(server: Server) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def gcs_env(server: Server) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": server.endpoint, "GOOGLE_CLOUD_PROJECT": "edge-test"}


def new_bucket(kind: str) -> str:
    name = f"edge-test-{os.getpid()}-{next(_counter)}"
    if kind == "s3":
        import boto3

        boto3.client("s3").create_bucket(Bucket=name)
    elif kind == "gs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        storage.Client(project="edge-test", credentials=AnonymousCredentials()).create_bucket(name)
    return name


@contextlib.contextmanager
def store_url(kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of ``kind`` ("file", "s3" or "gs"), as a URL for open_store."""
    if kind == "file":
        yield f"file://{tmp_path / 'store'}"
        return
    server = _server(kind)
    env = s3_env(server) if kind == "s3" else gcs_env(server)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bucket = new_bucket(kind)
    yield f"{kind}://{bucket}/edge"


def server_env(kind: str) -> dict[str, str]:
    """Environment for a child process (the CLI, the node) talking to ``kind``'s server."""
    if kind == "file":
        return {}
    server = _server(kind)
    return s3_env(server) if kind == "s3" else gcs_env(server)
