"""The import graph follows the layers of shared/DESIGN.md: each layer imports only the ones below it.

    cli/, __main__, the package top level   the entry point (the top level declares the built-in models' modules)
    demo/                                   the demo and the figure galleries
    applications (jets/, calo/ ...)         physics workflows on the families
    report/                                 the report folders and plots (does not import train/)
    evaluate/                               the evaluation layer: judgements that need a trained model
                                            (the classifier factory, two-sample tests, CaloChallenge)
    flows/ autoencoders/ gans/ gaussian.py  the families, side by side (density.py is their shared base),
    classifier.py                           and the plain binary classifier; each knows how it exports itself
    models.py, registry.py, export.py       the base, the name -> class registry, the ONNX mechanics
    train/
    data/
    metrics/
    nn/
    files.py, errors.py, _version.py, options.py, yamlconfig.py, progress.py, memory.py

Checks: what importing a low layer actually loads (in a fresh interpreter); every import statement of every
module under src/hepgen (module level and function-local, absolute and relative), read with ast, against the
layers and for circles; and no string in the models layer naming a module above it (a registry of upper modules).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hepgen

SRC = Path(__file__).resolve().parents[1] / "src" / "hepgen"

#: layer rank -> (name, module prefixes); a module belongs to the layer of its longest matching prefix
LAYERS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("ground floor", ("hepgen.files", "hepgen.errors", "hepgen._version", "hepgen.options", "hepgen.yamlconfig",
                         "hepgen.progress", "hepgen.pretrained", "hepgen.memory")),
    1: ("nn", ("hepgen.nn",)),
    2: ("metrics", ("hepgen.metrics",)),
    3: ("data", ("hepgen.data",)),
    4: ("train", ("hepgen.train",)),
    5: ("models", ("hepgen.models", "hepgen.registry", "hepgen.export")),
    6: ("families", ("hepgen.density", "hepgen.gaussian", "hepgen.classifier", "hepgen.flows", "hepgen.autoencoders",
                     "hepgen.gans", "hepgen.autoregressive")),
    7: ("evaluation", ("hepgen.evaluate",)),
    # above the evaluation layer: `compare` judges samples with its classifier test; nothing below imports report
    8: ("report", ("hepgen.report",)),
    9: ("applications", ("hepgen.jets", "hepgen.calo", "hepgen.lattice", "hepgen.unfolding",
                          "hepgen.targets", "hepgen.phasespace")),
    10: ("demo", ("hepgen.demo",)),
    11: ("entry point", ("hepgen.cli", "hepgen.__main__")),
}
ENTRY = max(LAYERS)
#: the package top level (``import hepgen``: lazy names) counts as the entry point, but is no prefix of the others
TOP = "hepgen"
#: families that must not import one another (the shared bases density.py and gaussian.py may be imported)
FAMILIES = ("hepgen.flows", "hepgen.autoencoders", "hepgen.gans", "hepgen.autoregressive")
#: pairs (importer prefix, imported prefix) forbidden although the importer's layer is higher
FORBIDDEN = (("hepgen.report", "hepgen.train"),)
#: known upward imports, each with its reason; the test fails when one is no longer needed, so the list only shrinks
ALLOWED: dict[tuple[str, str], str] = {}


def _is(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer(module: str) -> int:
    if module == TOP:
        return ENTRY
    best, rank = -1, None
    for r, (_, prefixes) in LAYERS.items():
        for p in prefixes:
            if _is(module, p) and len(p) > best:
                best, rank = len(p), r
    if rank is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layering.py (and to "
                             "the layer sketch in shared/DESIGN.md)")
    return rank


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC.parent / rel).with_suffix(".py").is_file() or (SRC.parent / rel / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported hepgen module) for every import in the file, wherever it stands."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is(a.name, "hepgen")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not _is(target, "hepgen"):
                continue
            for alias in node.names:  # `from hepgen.data import io` imports the module hepgen.data.io
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if _is_module(sub) else target))
    return found


def _family(module: str) -> str | None:
    return next((f for f in FAMILIES if _is(module, f)), None)


def offences(allowed: dict[tuple[str, str], str] | None = None, used: set | None = None) -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        importer = _module_name(path)
        rank = layer(importer)
        for line, imported in imports(path):
            if (importer, imported) in (allowed or {}):
                if used is not None:
                    used.add((importer, imported))
                continue
            where = f"{path.relative_to(SRC.parent.parent)}:{line}"
            if imported == "hepgen" and importer != "hepgen" and rank < ENTRY:
                out.append(f"{where}: {importer} imports the package top level (only the entry point may)")
                continue
            target = layer(imported)
            if target > rank:
                out.append(f"{where}: {importer} ({LAYERS[rank][0]}) imports {imported} ({LAYERS[target][0]}), "
                           "a layer above it")
            own, other = _family(importer), _family(imported)
            if own and other and own != other:
                out.append(f"{where}: {importer} imports {imported}, another family's internals")
            for low, high in FORBIDDEN:
                if _is(importer, low) and _is(imported, high):
                    out.append(f"{where}: {importer} imports {imported} ({low} must not import {high})")
    return out


def test_every_import_respects_the_layers():
    used: set = set()
    found = offences(ALLOWED, used)
    assert not found, "imports against the layering:\n" + "\n".join(found)
    assert used == set(ALLOWED), f"allowed upward imports that no longer occur (remove them): {set(ALLOWED) - used}"


def test_the_check_sees_function_local_relative_and_from_imports(tmp_path, monkeypatch):
    """The AST reader itself: it must not miss the kinds of imports that hide a layering violation."""
    fake = tmp_path / "hepgen"
    (fake / "train").mkdir(parents=True)
    (fake / "flows").mkdir()
    for f in ("__init__.py", "train/__init__.py", "flows/__init__.py", "flows/zoo.py", "models.py"):
        (fake / f).write_text("")
    (fake / "train" / "engine.py").write_text(
        "import os\n"
        "from hepgen import models\n"
        "def f():\n"
        "    from ..flows import zoo\n"
        "    import hepgen.flows.zoo as z\n"
        "    from hepgen import __version__\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert imports(fake / "train" / "engine.py") == [(2, "hepgen.models"), (4, "hepgen.flows.zoo"),
                                                     (5, "hepgen.flows.zoo"), (6, "hepgen")]
    found = offences()
    assert len(found) == 4 and all("hepgen/train/engine.py:" in f for f in found), found
    with pytest.raises(AssertionError, match="in no layer"):  # a new top-level module must be placed
        layer("hepgen.newthing")
    assert layer("hepgen") == ENTRY and layer("hepgen.flows.zoo") == 6


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(m for m in sys.modules if m.startswith('hepgen'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(SRC.parent)})  # this tree's sources, not an installed copy
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


ABOVE_MODELS = ("hepgen.flows", "hepgen.gans", "hepgen.autoencoders", "hepgen.gaussian", "hepgen.density",
                "hepgen.report", "hepgen.demo", "hepgen.cli", "hepgen.calo", "hepgen.classifier", "hepgen.autoregressive",
                "hepgen.evaluate")
APPLICATIONS = LAYERS[9][1]


@pytest.mark.parametrize(("statement", "forbidden"), [
    ("import hepgen.train, " + ", ".join(f"hepgen.train.{m}" for m in ("engine", "rundir", "protocol", "monitor",
                                                                      "distributed")), ABOVE_MODELS + ("hepgen.models",)),
    ("import hepgen.models", ABOVE_MODELS),
    ("import hepgen.report, hepgen.report.compare, hepgen.report.plots, hepgen.report.html",
     ABOVE_MODELS[:5] + ABOVE_MODELS[6:-1] + APPLICATIONS + ("hepgen.train",)),  # it may import hepgen.evaluate
    ("import hepgen", ABOVE_MODELS + ("hepgen.models", "hepgen.train", "hepgen.data")),
    # the evaluation layer builds its network (a family, trained by the engine) only when one is fitted
    ("import hepgen.evaluate, " + ", ".join(f"hepgen.evaluate.{m}" for m in ("classifiers", "two_sample",
                                                                             "calochallenge")),
     ABOVE_MODELS[:-1] + APPLICATIONS + ("hepgen.models", "hepgen.train")),
    ("import " + ", ".join(APPLICATIONS), ("hepgen.demo", "hepgen.cli")),
])
def test_importing_a_layer_loads_nothing_above_it(statement, forbidden):
    loaded = _loaded_after(statement)
    assert any(m.startswith(statement.split()[1].rstrip(",")) for m in loaded)
    bad = sorted(m for m in loaded if any(_is(m, f) for f in forbidden))
    assert not bad, f"{statement!r} also imports {bad}"


def _import_graph() -> dict[str, set[str]]:
    """importer -> imported hepgen modules, every import statement counted (function-local ones too)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        importer = _module_name(path)
        graph.setdefault(importer, set()).update(m for _, m in imports(path) if m != importer)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circles():
    """No module reaches itself through imports, function-local ones included (a package and the modules it
    re-exports are no circle unless a module imports the package back)."""
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself
    circles = _circles(_import_graph())
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_models_layer_names_no_module_above_it():
    """A string such as "hepgen.calo.gan:CaloGAN" in models.py would be a lower layer that knows an upper one:
    the registry is filled where the classes are defined and declared by the package top level."""
    rank = layer("hepgen.models")
    for prefix in LAYERS[rank][1]:
        path = SRC.parent / (prefix.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in re.findall(r"\bhepgen(?:\.\w+)+", node.value):
                    module = name
                    while not _is_module(module) and "." in module:  # hepgen.export.export -> hepgen.export
                        module = module.rpartition(".")[0]
                    if module == TOP:  # a public name, hepgen.load: where the top level takes it from
                        module = hepgen._LAZY.get(name.split(".")[1], TOP)
                    assert layer(module) <= rank, (f"{path.name}:{node.lineno} names {name} "
                                                   f"({LAYERS[layer(module)][0]}), a layer above it")


def test_the_evaluation_layer_sits_between_the_families_and_the_applications(tmp_path, monkeypatch):
    ranks = [layer(m) for m in ("hepgen.classifier", "hepgen.evaluate.two_sample", "hepgen.report.compare",
                                "hepgen.unfolding.omnifold")]
    assert ranks == sorted(set(ranks)), ranks
    fake = tmp_path / "hepgen"
    for d in ("evaluate", "flows", "calo"):
        (fake / d).mkdir(parents=True)
        (fake / d / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "classifier.py").write_text("")
    (fake / "evaluate" / "two_sample.py").write_text("from hepgen import classifier\n"
                                                      "def f():\n    from hepgen.calo import showers\n")
    (fake / "calo" / "showers.py").write_text("from hepgen.evaluate import two_sample\n")
    (fake / "flows" / "zoo.py").write_text("def g():\n    import hepgen.evaluate.two_sample\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    found = offences()
    assert len(found) == 2, found  # evaluation -> applications, family -> evaluation; not the downward two
    assert any("evaluate/two_sample.py:3" in f and "(applications)" in f for f in found)
    assert any("flows/zoo.py:2" in f and "(evaluation)" in f for f in found)
