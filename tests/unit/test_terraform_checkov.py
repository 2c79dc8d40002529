"""checkov over terraform/: zero failed checks, and every skip inline and justified.

checkov runs once per session (terraform framework only, no network): about 7 s here.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import MODULES, TERRAFORM, all_tf_files

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("checkov") is None,
    reason="checkov is not installed (pip install checkov); the terraform security gate cannot run",
)

SKIP = re.compile(r"#\s*checkov:skip=(?P<id>[A-Z0-9_]+)(?P<rest>.*)$")
# a reason is a sentence, not a token: "CKV_X: ok" does not count
MIN_REASON = 25


def run_checkov(directory: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "checkov.main",
            "-d",
            str(directory),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",  # no Prisma Cloud lookups: the machine is offline
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # checkov exits 1 when a check fails; anything else unparseable is a broken run
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov produced no JSON (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    if isinstance(report, list):  # one entry per framework when several ran
        (report,) = [r for r in report if r.get("check_type") == "terraform"]
    return report


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    return run_checkov(TERRAFORM)


def _failed(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]


def test_checkov_reports_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    # both modules and both examples were scanned, not an empty tree
    assert summary["resource_count"] >= 40
    assert summary["passed"] > 100
    assert summary["failed"] == 0, "\n".join(_failed(checkov_report))


def test_every_skip_is_inline_and_justified(checkov_report: dict[str, Any]) -> None:
    inline: set[str] = set()
    for path in all_tf_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = SKIP.search(line)
            if m is None:
                continue
            reason = m["rest"].lstrip(":").strip()
            assert m["rest"].startswith(":") and len(reason) >= MIN_REASON, (
                f"{path}:{n}: a skip needs ': <why this check does not apply>'"
            )
            inline.add(m["id"])
    skipped = {c["check_id"] for c in checkov_report["results"].get("skipped_checks", [])}
    # every skip checkov honoured was written in the files (none came from flags or config)
    assert skipped <= inline, sorted(skipped - inline)


def test_checkov_would_catch_a_regression(tmp_path: Path) -> None:
    """The gate is live: weakening the module (IMDSv1, public IP) makes checkov fail."""
    copy = tmp_path / "modules" / "aws-edge-fleet"
    shutil.copytree(MODULES / "aws-edge-fleet", copy)
    shutil.copytree(TERRAFORM / "bootstrap", tmp_path / "bootstrap")
    compute = copy / "compute.tf"
    text = compute.read_text()
    weakened = text.replace('http_tokens                 = "required"', 'http_tokens = "optional"')
    weakened = weakened.replace(
        "associate_public_ip_address = false", "associate_public_ip_address = true"
    )
    assert weakened != text
    compute.write_text(weakened)
    failed = {c["check_id"] for c in run_checkov(copy)["results"]["failed_checks"]}
    assert "CKV_AWS_79" in failed  # IMDSv2
    assert "CKV_AWS_88" in failed  # public IP
