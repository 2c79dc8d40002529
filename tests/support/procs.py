"""Start real processes for integration tests and wait for them without sleeping blind."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


_given: set[int] = set()


def free_port() -> int:
    """A free port not handed out before in this process: the kernel may give the
    same one to two calls in a row (a listener and an admin port that then clash)."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
    raise RuntimeError("no free port left that this test run has not used")


def wait_until(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``pred`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class EdgeProcess:
    """A real ``edge run`` process on loopback ports chosen for the test."""

    def __init__(
        self,
        config: dict | str | Path | None = None,
        *,
        workers: int = 1,
        extra_args: list[str] | None = None,
        node: dict | None = None,
        env: dict[str, str] | None = None,
        ready: bool = True,
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="edge-test-"))
        self.port = free_port()
        self.admin_port = free_port()
        self.workers = workers
        self.extra_args = extra_args or []
        self.node = node
        self.env = env
        self.wait_ready = ready
        if isinstance(config, dict):
            self.config_path: Path | None = self.tmp / "edge.yaml"
            self.write_config(config)
        else:
            self.config_path = Path(config) if config is not None else None
        self.log_path = self.tmp / "edge.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def write_config(self, config: dict) -> None:
        assert self.config_path is not None
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        os.replace(tmp, self.config_path)

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "edge", "run"]
        if self.node is not None:
            node_path = self.tmp / "node.yaml"
            node_path.write_text(yaml.safe_dump(self.node, sort_keys=False))
            args += ["--node", str(node_path)]
        else:
            args += ["--listen", f"127.0.0.1:{self.port}"]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        args += [
            "--admin",
            f"127.0.0.1:{self.admin_port}",
            "--workers",
            str(self.workers),
            "--state-dir",
            str(self.tmp / "state"),
            *self.extra_args,
        ]
        return args

    def start(self) -> EdgeProcess:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        if self.env:
            env.update(self.env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.args(), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        if self.wait_ready:
            self.ready()
        return self

    def ready(self, timeout: float = 30.0) -> None:
        exited = False

        def ok() -> bool:
            nonlocal exited
            if self.proc is not None and self.proc.poll() is not None:
                exited = True
                return True
            return http_get(self.admin_url + "/readyz", timeout=1)[0] == 200

        try:
            wait_until(ok, timeout, "edge /readyz")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{self.log()}") from None
        if exited:
            raise RuntimeError(f"edge exited early:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[str]:
        return self.log().splitlines()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def edge(config: dict | str | Path | None = None, **kw: object) -> Iterator[EdgeProcess]:
    p = EdgeProcess(config, **kw)  # type: ignore[arg-type]
    with p:
        yield p
