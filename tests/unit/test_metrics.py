"""edge.metrics: the definition helper, and multiprocess aggregation across real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge import metrics

CHILD = """
import sys
from edge import metrics
c = metrics.counter("edge_test_agg_total", "t", ["kind"])
g = metrics.gauge("edge_test_live", "t", mode="livesum")
c.labels(kind="a").inc(int(sys.argv[1]))
g.set(1)
"""


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_same_definition_returns_the_same_metric() -> None:
    a = metrics.counter("edge_test_same_total", "x", ["a"])
    assert metrics.counter("edge_test_same", "x", ["a"]) is a
    with pytest.raises(ValueError, match="already defined as counter"):
        metrics.gauge("edge_test_same", "x", ["a"])
    with pytest.raises(ValueError, match="labels"):
        metrics.counter("edge_test_same_total", "x", ["b"])
    with pytest.raises(ValueError, match="mode must be one of"):
        metrics.gauge("edge_test_bad_mode", "x", mode="median")


def test_single_process_render() -> None:
    if metrics.multiprocess_dir():
        pytest.skip("PROMETHEUS_MULTIPROC_DIR is set for this test run")
    h = metrics.histogram("edge_test_hist", "x", ["t"], buckets=(1, 10))
    h.labels(t="a").observe(5)
    samples = _samples(metrics.render())
    assert samples[("edge_test_hist_bucket", (("le", "10.0"), ("t", "a")))] == 1


def test_processes_are_summed_and_dead_live_gauges_forgotten(tmp_path: Path) -> None:
    mdir = tmp_path / "metrics"
    mdir.mkdir()
    (mdir / "stale.db").write_bytes(b"junk from a previous run")
    env = {**os.environ, metrics.ENV: str(mdir)}
    for n in (2, 3):
        p = subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, check=True)
        assert p.returncode == 0
    pids = sorted(int(f.stem.rsplit("_", 1)[1]) for f in mdir.glob("gauge_livesum_*.db"))
    assert len(pids) == 2
    # render in a child too, so this test process's registry stays single-process
    render = (
        "import sys; from edge import metrics; "
        "[metrics.mark_dead(int(p)) for p in sys.argv[1:]]; "
        "sys.stdout.buffer.write(metrics.render())"
    )
    (mdir / "stale.db").unlink()
    out = subprocess.run(
        [sys.executable, "-c", render, str(pids[0])], env=env, capture_output=True, check=True
    ).stdout
    samples = _samples(out)
    assert samples[("edge_test_agg_total", (("kind", "a"),))] == 5
    # one of the two writers is dead: its live gauge no longer counts
    assert samples[("edge_test_live", ())] == 1


def test_enable_multiprocess_wipes(tmp_path: Path) -> None:
    code = (
        "import sys, os, json; from edge import metrics; "
        "metrics.enable_multiprocess(sys.argv[1], wipe=True); "
        "metrics.counter('edge_test_after_total', 'x').inc(); "
        "print(json.dumps(sorted(os.listdir(sys.argv[1]))))"
    )
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "counter_1.db").write_bytes(b"old")
    out = subprocess.run(
        [sys.executable, "-c", code, str(mdir)], capture_output=True, text=True, check=True
    ).stdout
    files = json.loads(out)
    assert "counter_1.db" not in files and any(f.startswith("counter_") for f in files)
