"""The public namespaces: every name exported once, from its public path."""

from __future__ import annotations

import types

import trio_infer
import trio_infer.testing

PUBLIC = [trio_infer, trio_infer.testing]


def public_names(module: types.ModuleType) -> list[str]:
    return [name for name in dir(module) if not name.startswith("_")]


def test_public_objects_claim_their_public_module() -> None:
    for module in PUBLIC:
        for name in public_names(module):
            value = getattr(module, name)
            if isinstance(value, type | types.FunctionType):
                assert value.__module__ == module.__name__, f"{module.__name__}.{name}"


def test_each_object_is_exported_once() -> None:
    seen: dict[int, str] = {}
    for module in PUBLIC:
        for name in public_names(module):
            value = getattr(module, name)
            if isinstance(value, type | types.FunctionType):
                assert id(value) not in seen, f"{name} also exported as {seen[id(value)]}"
                seen[id(value)] = f"{module.__name__}.{name}"


def test_every_error_derives_from_error() -> None:
    for name in public_names(trio_infer):
        value = getattr(trio_infer, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, trio_infer.Error), name


def test_py_typed_marker_ships() -> None:
    from importlib.resources import files

    assert files("trio_infer").joinpath("py.typed").is_file()
