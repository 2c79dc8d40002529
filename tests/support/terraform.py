"""Offline checks of the terraform tree: parse every .tf with python-hcl2 and answer questions
about declarations and references, without a terraform binary.

The ``hcl2`` module on this machine may be python-hcl2 or checkov's fork of it
(bc-python-hcl2, same import name), which wraps every attribute value in a one-element list;
the helpers here read both shapes.
"""

from __future__ import annotations

import base64
import functools
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = TERRAFORM / "modules"
EXAMPLES = TERRAFORM / "examples"
BOOTSTRAP = TERRAFORM / "bootstrap"
BOOTSTRAP_SCRIPT = BOOTSTRAP / "edge-bootstrap.sh"
CLOUD_INIT_TEMPLATE = BOOTSTRAP / "cloud-init.yaml.tftpl"

# References inside expression strings. The lookbehind keeps "aws_lb.this" from matching
# inside "data.aws_lb.this" or "module.x.aws_lb".
VAR_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
DATA_REF = re.compile(r"(?<![\w.])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)")
MODULE_REF = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)")
RESOURCE_REF = re.compile(r"(?<![\w.])((?:aws|google)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
# A variable declared but deliberately unused says so in a comment in its block.
UNUSED_NOTE = re.compile(r"#\s*unused:\s*\S")


def unwrap(value: Any) -> Any:
    """The value of an attribute, whichever hcl2 flavour parsed it."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def strings(node: Any) -> Iterator[str]:
    """Every string (expressions included) in a parsed tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield key
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def refs(pattern: re.Pattern[str], node: Any) -> set[Any]:
    out: set[Any] = set()
    for s in strings(node):
        for m in pattern.finditer(s):
            out.add(m.group(1) if pattern.groups == 1 else m.groups())
    return out


@dataclass
class Variable:
    name: str
    file: Path
    body: dict[str, Any]

    @property
    def required(self) -> bool:
        return "default" not in self.body


@dataclass
class TfDir:
    """One terraform module directory (a module or an example), parsed."""

    path: Path
    files: dict[Path, dict[str, Any]] = field(default_factory=dict)

    def blocks(self, kind: str) -> Iterator[tuple[Path, dict[str, Any]]]:
        for path, doc in self.files.items():
            for block in doc.get(kind, []):
                yield path, block

    @functools.cached_property
    def variables(self) -> dict[str, Variable]:
        out: dict[str, Variable] = {}
        for path, block in self.blocks("variable"):
            for name, body in block.items():
                out[name] = Variable(name, path, body)
        return out

    @functools.cached_property
    def locals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _, block in self.blocks("locals"):
            out.update({k: v for k, v in block.items() if not k.startswith("__")})
        return out

    @functools.cached_property
    def resources(self) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for _, block in self.blocks("resource"):
            for rtype, named in block.items():
                for rname, body in named.items():
                    out[(rtype, rname)] = body
        return out

    @functools.cached_property
    def data_sources(self) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for _, block in self.blocks("data"):
            for dtype, named in block.items():
                for dname, body in named.items():
                    out[(dtype, dname)] = body
        return out

    @functools.cached_property
    def modules(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for _, block in self.blocks("module"):
            out.update(block)
        return out

    @functools.cached_property
    def outputs(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for _, block in self.blocks("output"):
            out.update(block)
        return out

    def everything_but_variable_declarations(self) -> list[Any]:
        """The parsed tree minus the variable blocks: a validation condition names its own
        variable, which is not a use."""
        trees: list[Any] = []
        for doc in self.files.values():
            trees.extend(v for k, v in doc.items() if k != "variable")
        return trees

    @functools.cached_property
    def used_variables(self) -> set[str]:
        return refs(VAR_REF, self.everything_but_variable_declarations())

    def variable_block_text(self, var: Variable) -> str:
        lines = var.file.read_text().splitlines()
        start = int(unwrap(var.body.get("__start_line__", 1)))
        end = int(unwrap(var.body.get("__end_line__", len(lines))))
        # a note just above the block counts too
        return "\n".join(lines[max(0, start - 3) : end])


def parse_dir(path: Path) -> TfDir:
    tf = TfDir(path)
    for file in sorted(path.glob("*.tf")):
        with open(file, encoding="utf-8") as f:
            tf.files[file] = hcl2.load(f)
    return tf


def all_tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


def module_source_dir(example: Path, module_block: dict[str, Any]) -> Path:
    return (example / str(unwrap(module_block["source"]))).resolve()


def render_cloud_init(bootstrap_script: str, settings: str, trusted_root: str) -> str:
    """Render bootstrap/cloud-init.yaml.tftpl as templatefile() would.

    The template may only use ``${base64gzip(NAME)}`` of its three inputs (the test checks
    that first), which is all this renderer implements: gzip, then base64, as terraform's
    base64gzip() does and cloud-init's ``encoding: gz+b64`` undoes.
    """
    values = {
        "bootstrap_script": bootstrap_script,
        "settings": settings,
        "trusted_root": trusted_root,
    }

    def sub(m: re.Match[str]) -> str:
        return base64.b64encode(gzip.compress(values[m.group(1)].encode())).decode()

    return TEMPLATE_EXPR.sub(sub, CLOUD_INIT_TEMPLATE.read_text())


TEMPLATE_EXPR = re.compile(r"\$\{base64gzip\((\w+)\)\}")
ANY_TEMPLATE_DIRECTIVE = re.compile(r"[$%]\{")


def build_wheel(src: Path, out_dir: Path) -> Path:
    """A PEP 427 wheel of the packages in ``src`` (per its pyproject.toml), stdlib only.

    The bootstrap test needs a real wheel to pip-install, and this machine has no ``wheel``
    package for setuptools' bdist_wheel (an isolated build would go to the network). The
    result is what bdist_wheel makes for a pure-Python project: the package files, METADATA,
    WHEEL, entry_points.txt and a RECORD of sha256 digests, which pip verifies.
    """
    import hashlib
    import tomllib
    import zipfile

    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    name, version = project["name"].replace("-", "_"), project["version"]
    dist_info = f"{name}-{version}.dist-info"
    wheel = out_dir / f"{name}-{version}-py3-none-any.whl"
    include = project_packages(src)
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Requires-Python: {project.get('requires-python', '>=3')}",
        *(f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])),
    ]
    scripts = project.get("scripts", {})
    generated = {
        f"{dist_info}/METADATA": "\n".join(metadata) + "\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests.support.terraform\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": "[console_scripts]\n"
        + "".join(f"{k} = {v}\n" for k, v in scripts.items()),
    }
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(arcname: str, data: bytes) -> None:
            zf.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arcname},sha256={digest.decode()},{len(data)}")

        for path in include:
            add(path.relative_to(src).as_posix(), path.read_bytes())
        for arcname, text in generated.items():
            add(arcname, text.encode())
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def project_packages(src: Path) -> list[Path]:
    """Files of the top-level packages pyproject's setuptools find-include names."""
    import tomllib

    conf = tomllib.loads((src / "pyproject.toml").read_text())
    patterns = conf["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = {p.rstrip("*") for p in patterns}
    files = [
        f
        for top in sorted(tops)
        if (src / top / "__init__.py").is_file()
        for f in sorted((src / top).rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
    ]
    return files
