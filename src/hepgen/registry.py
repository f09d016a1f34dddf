"""The name → class registry: every model ``hepgen fit NAME`` can train and :func:`hepgen.load` can rebuild.

A class joins it where it is defined, with the :func:`register` decorator (under its ``cli_name``).
Whoever stands above the families — hepgen's package top level for the built-in ones — may
:meth:`Registry.declare` which module registers a name, so that the name is listed and found without
importing every family up front: the module is imported when the name is first looked up. This
module (part of the models layer) names no module itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from hepgen.errors import ConfigError

__all__ = ["REGISTRY", "Registry", "model_class", "register"]


class Registry(MutableMapping[str, type]):
    """CLI name -> model class; a declared name imports its module on first lookup (``name in`` does not)."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}
        self._modules: dict[str, str] = {}

    def declare(self, name: str, module: str) -> None:
        """``module`` registers the model ``name`` when imported (it is imported on the first lookup)."""
        self._modules[name] = module

    def __getitem__(self, name: str) -> type:
        if name not in self._classes and name in self._modules:
            module = self._modules[name]
            importlib.import_module(module)
            if name not in self._classes:
                raise LookupError(f"model {name!r} is declared in {module}, which registers no class of that name")
        return self._classes[name]

    def __setitem__(self, name: str, cls: type) -> None:
        self._classes[name] = cls

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._classes.pop(name, None)
        self._modules.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter({**self._modules, **self._classes})

    def __len__(self) -> int:
        return len(self._modules.keys() | self._classes.keys())

    def __repr__(self) -> str:
        return f"Registry({', '.join(sorted(self))})"


#: the one registry: CLI name -> model class
REGISTRY = Registry()


def register(cls: type | None = None, *, name: str | None = None) -> Any:
    """Class decorator adding a model to :data:`REGISTRY` under ``name`` or its ``cli_name``, so that the CLI
    can fit it and :func:`hepgen.load` rebuild it: hepgen's families at their definition, a user's model (or a
    test's) the same way. Returns the class."""

    def wrap(c: type) -> type:
        c.cli_name = name or c.cli_name
        REGISTRY[c.cli_name] = c
        return c

    return wrap(cls) if cls is not None else wrap


def model_class(name: str) -> type:
    """The model class registered under CLI name ``name``; unknown names raise a ConfigError with a hint."""
    if name not in REGISTRY:
        import difflib

        near = difflib.get_close_matches(str(name), list(REGISTRY), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"unknown model {name!r}{hint}; available models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
