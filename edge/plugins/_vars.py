"""Variables, ``$var`` templates, ``vars`` expressions and regexes for plugin configs.

Thin wrappers over ``edge.vars``, ``edge.expr`` and ``re`` that turn their compile
errors into ``PluginConfigError`` carrying the plugin field, so ``edge validate`` names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from edge import expr
from edge import vars as edge_vars
from edge.context import Request
from edge.plugins.base import PluginConfigError

Getter = Callable[[Request], str | None]


def compile_var(name: str, field: str = "") -> Getter:
    try:
        return edge_vars.compile_var(name)
    except edge_vars.UnknownVar as e:
        raise PluginConfigError(field, str(e)) from None


def compile_template(template: str, field: str = "") -> Callable[[Request], str]:
    try:
        return edge_vars.compile_template(template)
    except edge_vars.UnknownVar as e:
        raise PluginConfigError(field, str(e)) from None


def compile_expr(rules: Any, field: str = "vars") -> Callable[[Request], bool]:
    try:
        return expr.compile_expr(rules)
    except expr.ExprError as e:
        raise PluginConfigError(
            f"{field}{e.where}" if e.where.startswith("[") else field, e.message
        ) from None
    except ValueError as e:
        raise PluginConfigError(field, str(e)) from None


def regex(pattern: str | bytes, field: str, flags: int = 0) -> re.Pattern[Any]:
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        shown = pattern.decode("latin-1") if isinstance(pattern, bytes) else pattern
        raise PluginConfigError(field, f"invalid regex {shown!r}: {e}") from None
