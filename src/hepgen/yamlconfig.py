"""The one reader of YAML text (config files, a run's config.yaml, option values): safe, and bounded.

Every YAML the user hands hepgen is read here, with a :class:`yaml.SafeLoader` that builds plain values
only (no tags that import or run code) and refuses, before any Python value is built from it:

- nesting deeper than :data:`MAX_DEPTH` (``[[[[...]]]]`` 5000 deep would otherwise end in a
  RecursionError, or later in ``repr``);
- a document that expands to more than :data:`MAX_NODES` values once its aliases are followed (a
  "billion laughs" alias bomb: 300 bytes that stand for millions of values), or whose alias refers to
  itself.

Errors name the file (or the option) and never quote more than a short excerpt of the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hepgen.errors import ConfigError, HepgenError

#: deepest nesting of lists/mappings accepted (hepgen's own files nest 4 deep)
MAX_DEPTH = 100
#: most values a document may stand for, aliases expanded (hepgen's own files hold a few hundred)
MAX_NODES = 1_000_000
#: longest part of a YAML parser message quoted in an error
MAX_MESSAGE = 300


class _Refused(yaml.YAMLError):
    """A document the bounds refuse (raised inside the loader, turned into the caller's error type)."""


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses deep nesting while composing and alias bombs before constructing."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"it nests lists/mappings more than {MAX_DEPTH} deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expansion(node)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node | None) -> None:
    """Refuse a node graph that, aliases followed, holds more than MAX_NODES values, nests deeper than
    MAX_DEPTH, or contains itself. Iterative, each distinct node visited once."""
    if root is None:
        return
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    state: dict[int, int] = {}  # 1: on the current path, 2: measured
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, measured = stack.pop()
        key = id(node)
        children = _children(node)
        if measured:
            size[key] = 1 + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            state[key] = 2
            where = f"(the value at line {node.start_mark.line + 1})"
            if size[key] > MAX_NODES:
                raise _Refused(f"its aliases expand to more than {MAX_NODES:,} values {where}: refused before "
                               "expanding them")
            if height[key] > MAX_DEPTH:
                raise _Refused(f"its aliases nest lists/mappings more than {MAX_DEPTH} deep {where}")
            continue
        if state.get(key) == 2:
            continue
        state[key] = 1
        stack.append((node, True))
        for child in children:
            if state.get(id(child)) == 1:
                raise _Refused(f"an alias refers to a value that contains it (line {child.start_mark.line + 1})")
            if state.get(id(child)) != 2:
                stack.append((child, False))


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def load_yaml(text: str, source: str, error: type[HepgenError] = ConfigError) -> Any:
    """The plain value (dict, list, str, number, bool, None) ``text`` holds, or ``error`` naming ``source``
    (a file name, or e.g. ``"--option hidden"``)."""
    loader = BoundedSafeLoader(text)
    loader.name = source  # the parser's messages say where: 'in "config file c.yaml", line 3, column 7'
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise error(f"{source} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source} is not valid YAML: {_short(exc)}") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, what: str = "config file", error: type[HepgenError] = ConfigError) -> Any:
    """Read and :func:`load_yaml` the file ``path``; ``what`` describes it in messages ("config file")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not a text (UTF-8) file") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return load_yaml(text, f"{what} {path}", error)
