"""``hepgen compare`` for showers: CaloChallenge-style evaluation of a candidate against a reference sample.

    features    :func:`hepgen.metrics.showers.shower_features` per shower; per feature the W1 distance
                and its ratio to the reference spread
    classifier  the CaloChallenge DNN's test AUC on high-level features and on normalised cells
                (:func:`hepgen.evaluate.calochallenge.classifier_auc`); with ``floor`` (a second, independent
                reference sample) the same AUCs of reference against floor: the best a candidate can do
    response    mean E_dep/E_inc and σ/E in bins of E_inc, reference and candidate
    figures     with ``report_dir``: feature histograms with ratio panels in E_inc bins, response plot,
                metrics.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.calo.showers import Showers, read_showers
from hepgen.evaluate.calochallenge import classifier_auc
from hepgen.metrics.showers import (
    classifier_inputs,
    response_in_bins,
    shower_features,
)
from hepgen.metrics.two_sample import wasserstein_1d

__all__ = ["compare_showers"]

PLOTTED = ("E_0", "E_1", "E_2", "response", "centroid_x_0", "width_x_1", "width_y_1", "sparsity_1", "brightest_1")


def _showers(x: Any, limit: int | None) -> Showers:
    return x if isinstance(x, Showers) else read_showers(x, limit=limit)


def compare_showers(ref: Any, cand: Any, *, floor: Any = None, report_dir: str | Path | None = None,
                    energy_edges: Any = (1, 10, 30, 60, 100), classifier_epochs: int = 30, max_showers: int | None = None,
                    threshold: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Compare shower samples (files ``path[:group]`` or :class:`~hepgen.calo.showers.Showers`); returns the metrics."""
    r, c = _showers(ref, max_showers), _showers(cand, max_showers)
    edges = np.asarray(energy_edges, dtype=float)
    fr = shower_features(r.list(), r.energy, threshold=threshold)
    fc = shower_features(c.list(), c.energy, threshold=threshold)
    result: dict[str, Any] = {"n_ref": len(r), "n_cand": len(c), "features": {}}
    for name in fr:
        std = float(np.std(fr[name])) or 1.0
        w1 = float(wasserstein_1d(fr[name], fc[name]))
        result["features"][name] = {"w1": w1, "w1_norm": w1 / std, "mean_ref": float(np.mean(fr[name])),
                                    "mean_cand": float(np.mean(fc[name]))}
    result["classifier"] = {}
    pairs = [("candidate", c)] + ([("floor", _showers(floor, max_showers))] if floor is not None else [])
    for label, other in pairs:
        for kind in ("high", "cells"):
            a = classifier_inputs(r.list(), r.energy, kind, threshold=threshold)
            b = classifier_inputs(other.list(), other.energy, kind, threshold=threshold)
            result["classifier"][f"{label}_{kind}"] = classifier_auc(a, b, epochs=classifier_epochs, seed=seed)
    rb = response_in_bins(fr["response"], r.energy, edges)
    cb = response_in_bins(fc["response"], c.energy, edges)
    result["response"] = {"edges": edges.tolist(), "ref": {k: v.tolist() for k, v in rb.items()},
                          "cand": {k: v.tolist() for k, v in cb.items()}}
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.abs(cb["mean"] / rb["mean"] - 1.0)
    result["response"]["max_rel_deviation"] = float(np.nanmax(dev)) if np.isfinite(dev).any() else None
    if report_dir is not None:
        from hepgen.files import atomic_write_text
        from hepgen.report.showers import plot_feature_in_energy_bins, plot_response

        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        figures = [str(plot_response(rb, cb, out / "response.png"))]
        for name in PLOTTED:
            unit = "MeV" if name.startswith(("E_", "brightest")) else "mm" if name.startswith(("centroid", "width")) else None
            figures += [str(p) for p in plot_feature_in_energy_bins(fr[name], fc[name], r.energy, c.energy, edges, out,
                                                                     name, unit)]
        result["figures"] = figures
        atomic_write_text(out / "metrics.json", json.dumps(_finite(result), indent=2) + "\n")
    return _finite(result)


def _finite(value: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
