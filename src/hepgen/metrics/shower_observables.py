"""Calorimeter-shower metrics in the CaloChallenge conventions: pure functions on arrays.

Showers are a list of layers ``(n, rows, cols)`` of cell energies (MeV; rows along y, columns along x,
every layer spanning ``width`` mm in both) and the incident energy ``(n,)`` in GeV. Per shower:

    E_k            = Σ_cells x                                     energy of layer k  [MeV]
    response       = Σ_k E_k / (1000 E_inc)                        E_dep / E_inc
    frac_k         = E_k / Σ_k E_k
    centroid x_k   = Σ x_c w_c / Σ w_c,   w_c = x_c if x_c > threshold else 0     [mm]
    width x_k      = sqrt(Σ x_c² w_c / Σ w_c − centroid²)                          [mm]   (same in y)
    sparsity_k     = fraction of cells with x_c > threshold
    brightest_k    = the largest cell energy of layer k [MeV]; second_k the second largest

A layer with no cell above the threshold has centroid and width 0. Other geometries give the cell
centres themselves (``centres``: per layer the two coordinates of every cell, e.g. η = r cos α and φ = r sin α
of a CaloChallenge binning, :mod:`hepgen.data.calochallenge`, as x and y; None for a layer without centroids) and
the layers' ``labels`` in the feature names (``E_12``, ``centroid_x_1``). :func:`classifier_inputs` builds
the two input sets of the CaloChallenge classifier test: high-level features (layer energies and
response as logarithms, centroids, widths, sparsities, log E_inc) and normalised cells
(x / (1000 E_inc) with log10 E_inc appended). The test itself trains a network, so it is in the
evaluation layer: :func:`hepgen.evaluate.calochallenge.classifier_auc`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepgen.errors import ConfigError, DataError

__all__ = ["cell_centres", "classifier_inputs", "response_in_bins", "shower_features"]

WIDTH_MM = 480.0


def cell_centres(rows: int, cols: int, width: float = WIDTH_MM) -> tuple[np.ndarray, np.ndarray]:
    """(x centres (cols,), y centres (rows,)) in mm of a layer spanning ``[-width/2, width/2]`` both ways."""
    x = -width / 2 + (np.arange(cols) + 0.5) * width / cols
    y = -width / 2 + (np.arange(rows) + 0.5) * width / rows
    return x, y


def _check(layers: Sequence[np.ndarray], energy: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    layers = [np.asarray(layer, dtype=np.float64) for layer in layers]
    energy = np.asarray(energy, dtype=np.float64).reshape(-1)
    for k, layer in enumerate(layers):
        if layer.ndim != 3:
            raise DataError(f"shower layer {k} must be (showers, rows, cols), got shape {layer.shape}")
        if len(layer) != len(energy):
            raise DataError(f"shower layer {k} has {len(layer)} showers but the incident energy has {len(energy)}")
    if not len(energy):
        raise DataError("no showers (0 rows)")
    if not np.all(energy > 0):
        raise DataError(f"the incident energy must be positive; row {int(np.argmax(~(energy > 0)))} is {energy[~(energy > 0)][0]}")
    return layers, energy


def shower_features(layers: Sequence[np.ndarray], energy: np.ndarray, *, threshold: float = 0.0,
                    width: float = WIDTH_MM, centres: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
                    labels: Sequence[str] | None = None, axes: tuple[str, str] = ("x", "y")) -> dict[str, np.ndarray]:
    """High-level features per shower (module doc), ``{name: (n,)}`` in a fixed order.

    ``layers``: K arrays (n, rows_k, cols_k) in MeV; ``energy``: (n,) in GeV; ``threshold``: the cell
    energy (MeV) above which a cell counts as hit (sparsity, centroids, widths). ``centres``: K entries
    (u, v), each (rows_k, cols_k), the cell centres along ``axes``, or None for a layer without centroids
    (default: the simulator's grid, columns along x and rows along y, ``width`` mm wide); ``labels``: K names
    of the layers in the feature names (default 0, 1, ...).
    """
    layers, energy = _check(layers, energy)
    labels = [str(k) for k in range(len(layers))] if labels is None else [str(k) for k in labels]
    if len(labels) != len(layers) or (centres is not None and len(centres) != len(layers)):
        raise ConfigError(f"{len(layers)} layers but {len(labels)} labels and "
                          f"{'default' if centres is None else len(centres)} centres")
    out: dict[str, np.ndarray] = {}
    sums = [layer.sum(axis=(1, 2)) for layer in layers]
    total = np.sum(sums, axis=0)
    for k, s in zip(labels, sums):
        out[f"E_{k}"] = s
    out["E_total"] = total
    out["response"] = total / (1000.0 * energy)
    safe_total = np.where(total != 0, total, 1.0)
    for k, s in zip(labels, sums):
        out[f"frac_{k}"] = np.where(total != 0, s / safe_total, 0.0)
    for k, (label, layer) in enumerate(zip(labels, layers)):
        n, rows, cols = layer.shape
        if centres is None:
            xc, yc = cell_centres(rows, cols, width)
            grid = (np.broadcast_to(xc[None, :], (rows, cols)), np.broadcast_to(yc[:, None], (rows, cols)))
        else:
            grid = centres[k]
        w = np.where(layer > threshold, layer, 0.0)
        norm = w.sum(axis=(1, 2))
        hit = norm > 0
        safe = np.where(hit, norm, 1.0)
        for axis, centre in zip(axes, grid if grid is not None else ()):
            centre = np.asarray(centre, dtype=np.float64)
            if centre.shape != (rows, cols):
                raise ConfigError(f"layer {label}: cell centres of shape {centre.shape} for cells {(rows, cols)}")
            mean = np.einsum("nij,ij->n", w, centre) / safe
            second = np.einsum("nij,ij->n", w, centre**2) / safe
            out[f"centroid_{axis}_{label}"] = np.where(hit, mean, 0.0)
            out[f"width_{axis}_{label}"] = np.where(hit, np.sqrt(np.maximum(second - mean**2, 0.0)), 0.0)
        out[f"sparsity_{label}"] = (layer > threshold).reshape(n, -1).mean(axis=1)
        flat = np.sort(layer.reshape(n, -1), axis=1)
        out[f"brightest_{label}"] = flat[:, -1]
        out[f"second_{label}"] = flat[:, -2] if flat.shape[1] > 1 else np.zeros(n)
    return out


def response_in_bins(response: np.ndarray, energy: np.ndarray, edges: Sequence[float],
                     weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean response and resolution per bin of incident energy: ``{"centre", "mean", "mean_err", "resolution",
    "resolution_err", "count"}`` (bins,) each.

    ``resolution`` = σ(response) / mean(response) in the bin (= σ_E / E of the deposited energy at fixed
    E_inc); errors: σ/√n for the mean and resolution/√(2(n−1)) for the resolution (Gaussian). Bins with
    fewer than 2 showers give NaN. With ``weights`` (n,) the mean and σ are weighted (Σw r / Σw and
    Σw (r − mean)² / Σw) and n in the errors is Kish's (Σw)²/Σw²; a bin whose weights sum to ≤ 0 gives NaN.
    """
    response = np.asarray(response, dtype=np.float64).reshape(-1)
    energy = np.asarray(energy, dtype=np.float64).reshape(-1)
    edges = np.asarray(edges, dtype=np.float64)
    if len(response) != len(energy):
        raise DataError(f"response has {len(response)} rows but the energy has {len(energy)}")
    w_all = np.ones(len(response)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w_all) != len(response):
        raise DataError(f"response has {len(response)} rows but the weights have {len(w_all)}")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ConfigError(f"energy bin edges must be increasing, got {edges.tolist()}")
    index = np.digitize(energy, edges) - 1
    bins = len(edges) - 1
    out = {k: np.full(bins, np.nan) for k in ("mean", "mean_err", "resolution", "resolution_err")}
    out["count"] = np.zeros(bins, dtype=int)
    out["centre"] = 0.5 * (edges[1:] + edges[:-1])
    for b in range(bins):
        r, w = response[index == b], w_all[index == b]
        out["count"][b] = len(r)
        if len(r) < 2 or not w.sum() > 0:
            continue
        if weights is None:
            n, mean, std = len(r), r.mean(), r.std(ddof=1)
        else:
            n = w.sum() ** 2 / np.sum(w**2)
            mean = np.sum(w * r) / w.sum()
            std = np.sqrt(max(np.sum(w * (r - mean) ** 2) / w.sum(), 0.0))
        out["mean"][b], out["mean_err"][b] = mean, std / np.sqrt(n)
        res = std / mean if mean != 0 else np.nan
        out["resolution"][b], out["resolution_err"][b] = res, res / np.sqrt(2 * max(n - 1, 1))
    return out


def classifier_inputs(layers: Sequence[np.ndarray], energy: np.ndarray, kind: str = "high", *,
                      threshold: float = 0.0, centres: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
                      labels: Sequence[str] | None = None, axes: tuple[str, str] = ("x", "y")) -> np.ndarray:
    """The classifier's inputs (n, d): ``kind="high"`` high-level features, ``"cells"`` normalised cells.

    high: log(ε + E_k/(1000 E_inc)) per layer, log response, centroids and widths / 100 mm, sparsities,
    log10 E_inc; cells: every cell x / (1000 E_inc) (so a cell's value is its share of the incident
    energy), then log10 E_inc (as in the CaloChallenge's evaluation). ``centres``, ``labels``, ``axes``: as
    in :func:`shower_features`.
    """
    layers, energy = _check(layers, energy)
    log_e = np.log10(energy)[:, None]
    if kind == "cells":
        cells = np.concatenate([layer.reshape(len(layer), -1) for layer in layers], axis=1)
        return np.concatenate([cells / (1000.0 * energy[:, None]), log_e], axis=1)
    if kind != "high":
        raise ConfigError(f"classifier inputs are 'high' (high-level features) or 'cells', not {kind!r}")
    f = shower_features(layers, energy, threshold=threshold, centres=centres, labels=labels, axes=axes)
    labels = [str(k) for k in range(len(layers))] if labels is None else [str(k) for k in labels]
    eps = 1e-6
    cols = [np.log(eps + np.maximum(f[f"E_{k}"], 0.0) / (1000.0 * energy)) for k in labels]
    cols.append(np.log(eps + np.maximum(f["response"], 0.0)))
    for k in labels:
        cols += [f[f"{name}_{axis}_{k}"] / 100.0 for name in ("centroid", "width") for axis in axes
                 if f"{name}_{axis}_{k}" in f]
        cols.append(f[f"sparsity_{k}"])
    return np.concatenate([np.column_stack(cols), log_e], axis=1)


def __getattr__(name: str):
    from hepgen.metrics._moved import moved

    raise moved(__name__, name)
