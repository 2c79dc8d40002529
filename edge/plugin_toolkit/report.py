"""The report of ``edge plugin test`` (``production.run_production`` builds it): its
exit status and its text form (``--json`` prints the dict itself).

What the upstream and the client would see, the plugin's log lines, metrics and time
per callback, and whether the module trapped or refused its configuration.
"""

from __future__ import annotations

from typing import Any

EXIT_OK, EXIT_TRAP, EXIT_CONFIG = 0, 1, 2


def exit_code(report: dict[str, Any]) -> int:
    if report.get("trap"):
        return EXIT_TRAP
    if not report.get("configured"):
        return EXIT_CONFIG
    return EXIT_OK


def format_text(report: dict[str, Any]) -> str:
    lines = [f"host: {report['host']}"]
    if report.get("config_error"):
        lines.append(f"CONFIGURATION REJECTED: {report['config_error']}")
    if report.get("trap"):
        lines.append(f"TRAP: {report['trap']}")
        lines += [f"    {frame}" for frame in report.get("backtrace", [])]
    up = report.get("upstream")
    lines.append("")
    if up is None:
        lines.append("== upstream: not reached ==")
    else:
        lines.append("== upstream would receive ==")
        lines.append(f"{up['method']} {up['path']}")
        lines += [f"{k}: {v}" for k, v in up["headers"]]
        lines += ["", up["body"]] if up["body"] else []
    cl = report.get("client")
    lines.append("")
    if cl is None:
        lines.append("== client: no response ==")
    else:
        origin = "local response from the plugin" if cl["local_response"] else "from upstream"
        lines.append(f"== client would receive ({origin}) ==")
        lines.append(f"HTTP/1.1 {cl['status']}")
        lines += [f"{k}: {v}" for k, v in cl["headers"]]
        lines += ["", cl["body"]] if cl["body"] else []
        if cl.get("aborted"):
            lines.append(f"(the gateway aborts this response: {cl['aborted']})")
    lines += ["", "== plugin log =="]
    lines += [f"[{level}] {msg}" for level, msg in report.get("logs", [])] or ["(none)"]
    lines += ["", "== metrics =="]
    lines += [f"{k} = {v}" for k, v in sorted(report.get("metrics", {}).items())] or ["(none)"]
    lines += ["", "== time per callback (µs) =="]
    lines += [f"{k}: {v:.1f}" for k, v in report.get("timings_us", {}).items()] or ["(none)"]
    return "\n".join(lines)
