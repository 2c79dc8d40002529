"""Runs one request through a module for ``edge plugin test`` and reports what happened.

The report is a plain dict (printed as text or ``--json``): what the upstream and the
client would see, the plugin's log lines, metrics and time per callback, and whether
the module trapped or refused its configuration.
"""

from __future__ import annotations

from typing import Any

from edge.plugin_toolkit.harness import Host, HttpMessage, PluginTrap
from edge.plugin_toolkit.messages import RequestSpec, ResponseSpec

EXIT_OK, EXIT_TRAP, EXIT_CONFIG = 0, 1, 2


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "backslashreplace")


def run_harness(
    wasm: bytes,
    *,
    conf: bytes,
    vm_config: bytes,
    request: RequestSpec,
    upstream: ResponseSpec,
    plugin_name: str,
    root_id: str,
    max_body_bytes: int,
    memory_mb: int,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "host": "edge.plugin_toolkit.harness",
        "configured": False,
        "trap": None,
        "upstream": None,
        "client": None,
        "logs": [],
        "metrics": {},
        "timings_us": {},
    }
    try:
        host = Host(
            wasm,
            plugin_config=conf,
            vm_config=vm_config,
            plugin_name=plugin_name,
            root_id=root_id,
            max_body_bytes=max_body_bytes,
            memory_mb=memory_mb,
        )
    except PluginTrap as e:
        report["trap"] = str(e)
        return report
    report["logs"] = [list(x) for x in host.logs]
    report["timings_us"] = dict(host.timings_us)
    if not (host.ready and host.configured):
        report["config_error"] = (
            "proxy_on_vm_start returned false"
            if not host.ready
            else "proxy_on_configure returned false"
        )
        report["metrics"] = host.metric_values()
        return report
    report["configured"] = True
    setup_logs = report["logs"]
    out = host.run(
        request.method,
        request.path,
        [(k, v) for k, v in request.headers if k.lower() != "host"],
        request.body,
        HttpMessage(headers=upstream.headers, body=upstream.body, status=upstream.status),
        authority=request.authority,
    )
    report["trap"] = out.trap
    report["logs"] = setup_logs + [list(x) for x in out.logs]
    report["metrics"] = out.metrics
    report["timings_us"] = {k: round(v, 1) for k, v in out.timings_us.items()}
    report["http_calls"] = [
        {"upstream": c["upstream"], "headers": c["headers"], "body": _body_text(c["body"])}
        for c in out.http_calls
    ]
    if out.upstream is not None:
        pseudo = dict(out.upstream.headers)
        report["upstream"] = {
            "method": pseudo.get(":method", ""),
            "path": pseudo.get(":path", ""),
            "headers": [[k, v] for k, v in out.upstream.headers if not k.startswith(":")],
            "body": _body_text(out.upstream.body),
        }
    if out.client is not None:
        report["client"] = {
            "status": out.client.status,
            "headers": [list(h) for h in out.client.headers],
            "body": _body_text(out.client.body),
            "local_response": out.local_response,
        }
    return report


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
    up = report.get("upstream")
    lines.append("")
    if up is None:
        lines.append("== upstream: not reached ==")
    else:
        lines.append("== upstream would receive ==")
        lines.append(f"{up['method']} {up['path']}")
        lines += [f"{k}: {v}" for k, v in up["headers"]]
        lines += ["", up["body"]] if up["body"] else []
    for call in report.get("http_calls", []):
        lines.append(f"== http_call to {call['upstream']} ==")
        lines += [f"{k}: {v}" for k, v in call["headers"]]
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
    lines += ["", "== plugin log =="]
    lines += [f"[{level}] {msg}" for level, msg in report.get("logs", [])] or ["(none)"]
    lines += ["", "== metrics =="]
    lines += [f"{k} = {v}" for k, v in sorted(report.get("metrics", {}).items())] or ["(none)"]
    lines += ["", "== time per callback (µs) =="]
    lines += [f"{k}: {v:.1f}" for k, v in report.get("timings_us", {}).items()] or ["(none)"]
    return "\n".join(lines)
