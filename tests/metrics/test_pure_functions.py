"""hepgen.metrics holds pure functions of arrays: importing every metrics module trains nothing and needs no
training machinery (no torch, no scikit-learn); what trains a classifier is the evaluation layer's."""

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_metrics_modules_load_neither_torch_nor_scikit_learn():
    modules = sorted(f"hepgen.metrics.{p.stem}" for p in (SRC / "hepgen" / "metrics").glob("*.py")
                     if p.stem != "__init__")
    code = (f"import sys, hepgen.metrics, {', '.join(modules)}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)})
    assert result.returncode == 0, result.stderr
    assert len(modules) >= 8 and result.stdout.strip() == "[]", result.stdout


def test_no_metrics_module_imports_torch_or_scikit_learn_even_inside_a_function():
    import ast

    found = []
    for path in sorted((SRC / "hepgen" / "metrics").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("torch", "sklearn")]
    assert not found, found
