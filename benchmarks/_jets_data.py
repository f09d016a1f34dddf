"""Jets for the jets benchmarks: the shipped sample (--quick) or ``hepgen data jets`` cached in benchmarks/data/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import _jet_cache as jet_cache
import numpy as np

DATA = Path(__file__).parent / "data"
COLUMNS = ['pt', 'eta', 'mass', 'tau1', 'tau2', 'tau3', 'tau21', 'tau32', 'c2', 'd2', 'n_constituents']


def _array(node: h5py.Group | h5py.Dataset, file: Path) -> np.ndarray:
    """A dataset as it is, or ``hepgen data jets``'s features group (one dataset per column) as (n, 11) in COLUMNS'
    order (the shipped sample holds one (n, 11) dataset in that order instead)."""
    if isinstance(node, h5py.Dataset):
        return node[:]
    missing = [c for c in COLUMNS if c not in node]
    if missing:
        sys.exit(f"{file}: the group {node.name} has no column {missing[0]!r} (columns: {', '.join(node)})")
    return np.column_stack([node[c][:] for c in COLUMNS])


def cached_path(process: str, n: int, seed: int = 11) -> Path:
    """Where ``hepgen data jets -n N --seed S --option process=P`` is cached."""
    return DATA / f"jets_{process}_{n}_{seed}.h5"


def jets(quick: bool, n: int | dict[str, int], processes=("qcd", "top", "w"), seed: int = 11, images: bool = True
         ) -> dict[str, dict[str, np.ndarray]]:
    """{process: {"features": (n, 11), "images": (n, 40, 40)}}; quick: the shipped 2500 jets per process.

    ``images=False``: the features only (the decorrelation study; 70k images are ~450 MB).
    ``n``: jets per process, or {process: n} (e.g. 70000 QCD, 20000 top and W). A process whose cached file
    is missing but whose chunks from benchmarks/_jet_cache.py hold at least n jets is read from those."""
    if quick:
        import hepgen.data.generators.jets as gen

        path = {p: (gen.shipped_sample_path(), p) for p in processes}
    else:
        DATA.mkdir(exist_ok=True)
        path = {}
        for p in processes:
            n_p = n[p] if isinstance(n, dict) else n
            out = cached_path(p, n_p, seed)
            if not out.exists() and sum(10_000 for _ in jet_cache.chunks(p)) >= n_p:
                path[p] = (jet_cache.chunks(p), n_p)  # the resumable chunks of benchmarks/_jet_cache.py
                continue
            if not out.exists():  # generated once (both cores), then cached outside git
                subprocess.run([sys.executable, "-m", "hepgen", "data", "jets", "-n", str(n_p), "--seed", str(seed),
                                "--option", f"process={p}", "--option", "workers=-1", "-o", str(out)], check=True)
            path[p] = (out, None)
    result = {}
    names = ("features", "images") if images else ("features",)
    for p, (file, key) in path.items():
        if isinstance(file, list):  # chunks, read in order until n jets
            parts, have = [], 0
            for chunk in file:
                if have >= key:
                    break
                with h5py.File(chunk) as f:
                    parts.append({k: _array(f[k], chunk) for k in names})
                have += len(parts[-1]["features"])
            result[p] = {k: np.concatenate([q[k] for q in parts])[:key] for k in names}
        else:
            with h5py.File(file) as f:
                g = f[key] if key else f
                result[p] = {k: _array(g[k], file) for k in names}
        result[p]["features"] = result[p]["features"].astype(np.float64)
    return result
