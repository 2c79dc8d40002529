"""Read a configuration file (YAML or JSON) into a ``Config``, treating it as hostile.

- A path may be a file or a directory holding ``edge.yaml`` (or ``edge.yml``,
  ``edge.json``); relative paths inside the configuration (WASM files) are relative
  to that directory, returned as the base directory.
- Size is capped before parsing (``MAX_CONFIG_BYTES``), YAML is parsed with the safe
  loader only, and the parsed tree is walked with a node budget (``MAX_NODES``) so
  an alias bomb ("billion laughs": small text, exponential tree) is refused instead
  of being expanded by the decoder.
- Duplicate keys in a mapping are an error (YAML and JSON both silently keep the
  last one, which hides mistakes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from edge.config.model import Config, decode_config
from edge.errors import ConfigError

# far above any real configuration (10,000 routes are about 2 MiB of YAML)
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# values in the parsed tree, counting every alias expansion
MAX_NODES = 2_000_000
# real configurations nest about 8 levels (routes[0].upstream.checks.active.healthy...)
MAX_DEPTH = 64
DIR_FILES = ("edge.yaml", "edge.yml", "edge.json")


class ConfigFileError(ConfigError):
    """The configuration file itself cannot be read (missing, not a file, no access)."""


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """yaml.safe_load plus an error on duplicate mapping keys."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    dup = key in seen
                except TypeError:
                    continue  # unhashable keys are rejected by the constructor itself
                if dup:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def resolve_config_file(path: str | Path) -> Path:
    """The file to read for ``path``; raises ``ConfigFileError``."""
    p = Path(path)
    if p.is_dir():
        for name in DIR_FILES:
            candidate = p / name
            if candidate.is_file():
                return candidate
        raise ConfigFileError([("", f"no {' or '.join(DIR_FILES)} in directory {p}")], str(p))
    if not p.exists():
        raise ConfigFileError([("", "no such file")], str(p))
    if not p.is_file():
        raise ConfigFileError([("", "not a regular file")], str(p))
    return p


def read_capped(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigFileError([("", f"cannot read: {e.strerror or e}")], str(path)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([("", f"file larger than {MAX_CONFIG_BYTES} bytes")], str(path))
    return data


def _reject_duplicate_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _check_yaml_depth(text: str, name: str) -> None:
    """Refuse deep nesting before composing: libyaml's composer recurses in C and a
    document of 200,000 ``[`` crashes the process instead of raising. The event stream
    is produced iteratively, so counting depth on it is safe."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
                raise ConfigError(
                    [("", f"YAML nested deeper than {MAX_DEPTH} levels{where}")], name
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_text(data: bytes, name: str) -> Any:
    """Plain data from YAML or JSON bytes (JSON when ``name`` ends in .json)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([("", f"not UTF-8 text (byte {e.start})")], name) from None
    if name.endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_pairs)
        except json.JSONDecodeError as e:
            raise ConfigError(
                [("", f"JSON syntax error at line {e.lineno} column {e.colno}: {e.msg}")], name
            ) from None
        except ValueError as e:
            raise ConfigError([("", f"JSON: {e}")], name) from None
        except RecursionError:
            raise ConfigError([("", "JSON nested too deeply")], name) from None
    try:
        _check_yaml_depth(text, name)
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        what = e.problem or e.context or "invalid YAML"
        raise ConfigError([("", f"YAML error{where}: {what}")], name) from None
    except yaml.YAMLError as e:
        raise ConfigError([("", f"YAML error: {e}")], name) from None
    except RecursionError:
        raise ConfigError([("", "YAML nested too deeply")], name) from None


def check_tree_size(obj: Any, name: str, limit: int = MAX_NODES) -> None:
    """Refuse trees with more than ``limit`` values once aliases are expanded, or
    nested deeper than ``MAX_DEPTH`` (later recursive code must not hit the stack limit)."""
    count = 0
    stack = [(obj, 0)]
    while stack:
        o, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ConfigError([("", f"configuration nested deeper than {MAX_DEPTH} levels")], name)
        if count > limit:
            raise ConfigError(
                [
                    (
                        "",
                        f"configuration too large once YAML aliases are expanded "
                        f"(> {limit} values)",
                    )
                ],
                name,
            )
        if isinstance(o, dict):
            stack.extend((v, depth + 1) for v in o.values())
            count += len(o)  # the keys
        elif isinstance(o, list):
            stack.extend((v, depth + 1) for v in o)


def load_config(path: str | Path) -> tuple[Config, Path]:
    """Read, parse and decode the configuration at ``path``.

    Returns ``(config, base_dir)``. Raises ``ConfigFileError`` when the file cannot
    be read, ``ConfigError`` (with every per-object problem) when it is invalid.
    Cross-object validation happens in ``compile_snapshot``.
    """
    file = resolve_config_file(path)
    name = str(file)
    raw = parse_text(read_capped(file), name)
    check_tree_size(raw, name)
    config, problems = decode_config(raw)
    if config is None:
        raise ConfigError(problems, name)
    return config, file.parent
