from __future__ import annotations

import sys
from typing import Any

import msgspec
import pytest

from edge.plugins import registry
from edge.plugins.base import CompileEnv, Plugin


class Conf(msgspec.Struct, forbid_unknown_fields=True):
    size: int = 1


class Sized(Plugin):
    name = "t-sized"
    priority = 10
    Config = Conf


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "_loaded", False)


def test_builtin_modules_register_their_plugin_class(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    pkg = tmp_path / "fakeplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "one.py").write_text(
        "from edge.plugins.base import Plugin\n"
        "class One(Plugin):\n    name = 'one'\n    priority = 5\n"
        "class _Helper:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ("fakeplugins.one",))
    assert registry.names() == frozenset({"one"})  # the helper class is not a plugin
    assert registry.get("one").priority == 5  # type: ignore[union-attr]
    sys.modules.pop("fakeplugins.one", None)
    sys.modules.pop("fakeplugins", None)


def test_a_broken_plugin_module_is_not_hidden(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    pkg = tmp_path / "brokenplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ("brokenplugins.bad",))
    with pytest.raises(ModuleNotFoundError):
        registry.names()
    sys.modules.pop("brokenplugins", None)


def test_register_build_and_meta(fresh_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ())
    registry.register(Sized)
    env = CompileEnv()
    inst, prio = registry.build("t-sized", {"size": 3}, env, "routes[0].plugins.t-sized")
    assert isinstance(inst, Sized) and inst.conf.size == 3 and prio == 10
    _, prio = registry.build("t-sized", {"_meta": {"priority": -4}}, env, "p")
    assert prio == -4
    assert registry.build("t-sized", {"_meta": {"disable": True}, "bogus": 1}, env, "p") is None
    assert registry.build("t-sized", None, env, "p") is not None
    with pytest.raises(registry.ConfigProblems) as e:
        registry.build("t-sized", {"size": "big"}, env, "routes[0].plugins.t-sized")
    assert e.value.problems == [("routes[0].plugins.t-sized.size", "Expected `int`, got `str`")]
    with pytest.raises(registry.ConfigProblems) as e:
        registry.build("t-sized", {"_meta": {"priority": "x"}}, env, "p")
    assert e.value.problems[0][0] == "p._meta.priority"
    registry.unregister("t-sized")
    with pytest.raises(registry.ConfigProblems, match="unknown plugin"):
        registry.build("t-sized", {}, env, "p")


def test_factories(fresh_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ())
    seen: list[tuple[str, Any]] = []

    def factory(name: str, conf: Any, env: CompileEnv) -> Plugin:
        seen.append((name, conf))
        p = Plugin(conf, env)
        p.priority = 3  # type: ignore[misc]
        return p

    registry.register(factory, "acme/x")
    assert "acme/x" in registry.names()
    assert not registry.is_credential_plugin("acme/x")
    _inst, prio = registry.build("acme/x", {"a": 1, "_meta": {"priority": 9}}, CompileEnv(), "p")
    assert seen == [("acme/x", {"a": 1})] and prio == 9
    # per-snapshot entries shadow nothing globally
    extra = {"only-here": factory}
    assert registry.get("only-here") is None
    assert registry.get("only-here", extra) is factory
    with pytest.raises(ValueError):
        registry.register(factory)  # a function has no plugin name
