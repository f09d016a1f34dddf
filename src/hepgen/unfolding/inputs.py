"""The inputs every unfolding method shares, read and checked once.

Simulation: ``truth (n, d)`` and ``reco (n, d)`` row-paired (row i of both is one simulated event),
``pass_truth (n,)`` (False: a fake, a reco object without a truth partner; its truth row is ignored),
``pass_reco (n,)`` (False: not reconstructed or not accepted; its reco row is ignored) and weights.
Data: ``data (m, d)`` observed reco events with the columns of ``reco`` (and optional weights); the
data's true truth ``data_truth`` when known (a closure or non-closure study).

Without ``pass_truth`` every simulated row has a truth partner; a simulated truth row of all zeros
(how ``hepgen data smear`` writes fakes) then raises a DataError asking for the flag. Without
``pass_reco`` every simulated row is reconstructed and accepted.

Every method gets the same checks, here, before anything is trained: finite values (the bad row and column
named), flags of 0/1, weights finite with a positive total per sample (negative weights event by event are
allowed, as ``roc`` allows them), a positive total weight of the simulated events passing truth and reco,
and (:func:`check_response`) at least as many of those events as truth bins per observable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepgen.errors import DataError


@dataclass
class UnfoldingInputs:
    """Checked arrays (float64) of one unfolding problem; see the module doc."""

    truth: np.ndarray
    reco: np.ndarray
    pass_truth: np.ndarray
    pass_reco: np.ndarray
    sim_weights: np.ndarray
    data: np.ndarray
    data_weights: np.ndarray
    names: list[str]
    units: dict[str, str] = field(default_factory=dict)
    data_truth: np.ndarray | None = None
    data_truth_weights: np.ndarray | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> int:
        return self.truth.shape[1]

    @property
    def has_fakes(self) -> bool:
        return bool((~self.pass_truth).any())


def _array(x: Any, what: str, label: str, columns: list[str] | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or len(a) == 0:
        raise DataError(f"{label} ({what}) must be a non-empty table (events, observables); got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        name = f"'{columns[col]}'" if columns and len(columns) == a.shape[1] else str(col)
        raise DataError(f"{label} ({what}) has a non-finite value ({a[row, col]}) at row {row}, column {name}")
    return a


def _flags(x: Any, n: int, what: str, label: str, default: bool) -> np.ndarray:
    if x is None:
        return np.full(n, default)
    a = np.asarray(x)
    if a.ndim != 1 or len(a) != n:
        raise DataError(f"{label} ({what}) must hold one flag per event ({n}); got shape {a.shape}")
    if a.dtype != bool:
        values = a.astype(np.float64)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{label} ({what}) must be boolean (0/1); row {row} holds {float(values[row]):g}")
        a = values > 0.5
    return a


def _weights(x: Any, n: int, what: str, label: str) -> np.ndarray:
    if x is None:
        return np.ones(n)
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or len(a) != n:
        raise DataError(f"{label} ({what}) must hold one weight per event ({n}); got shape {a.shape}")
    if not np.isfinite(a).all():
        row = int(np.argmax(~np.isfinite(a)))
        raise DataError(f"{label} ({what}) has a non-finite weight ({a[row]}) at row {row}")
    total = a.sum()
    if not total > 0:
        why = "all weights are zero" if not a.any() else f"the weights sum to {total:g}"
        raise DataError(f"{label} ({what}): {why}; the total must be positive (single negative weights are "
                        "allowed, a sample of negative total is not)")
    return a


def check_inputs(truth: Any, reco: Any, data: Any, *, pass_truth: Any = None, pass_reco: Any = None,
                 sim_weights: Any = None, data_weights: Any = None, data_truth: Any = None,
                 data_truth_weights: Any = None, names: list[str] | None = None,
                 units: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 columns: dict[str, list[str] | None] | None = None) -> UnfoldingInputs:
    """Arrays -> :class:`UnfoldingInputs`, or a DataError naming the input (``labels``: file names by role;
    ``columns``: the column names of each table by role, to name the column of a bad value).

    Weights may be negative event by event, but each sample's total must be positive and finite, and so must
    the total weight of the simulated events passing truth and reco (the detector response is their share)."""
    labels = dict(labels or {})
    columns = dict(columns or {})
    lab = lambda role: labels.get(role, role)
    truth = _array(truth, "simulated truth", lab("sim_truth"), columns.get("sim_truth") or names)
    reco = _array(reco, "simulated reco", lab("sim_reco"), columns.get("sim_reco") or names)
    if len(truth) != len(reco):
        raise DataError(f"{lab('sim_truth')} has {len(truth)} events but {lab('sim_reco')} has {len(reco)}: "
                        "simulated truth and reco must be row-paired (one row per simulated event in both)")
    if truth.shape[1] != reco.shape[1]:
        raise DataError(f"{lab('sim_truth')} has {truth.shape[1]} observables but {lab('sim_reco')} has "
                        f"{reco.shape[1]}: unfolding maps each reco observable to its truth observable")
    n, d = truth.shape
    pt = _flags(pass_truth, n, "pass_truth flags", lab("pass_truth"), True)
    pr = _flags(pass_reco, n, "pass_reco flags", lab("pass_reco"), True)
    if pass_truth is None:
        zero = np.flatnonzero(np.all(truth == 0.0, axis=1))
        if len(zero):
            raise DataError(f"{lab('sim_truth')}: row {zero[0]} (and {len(zero) - 1} more) is all zeros, a fake "
                            "without a truth partner; give the pass_truth flags (--pass-truth COL|FILE:KEY) so "
                            "fakes are handled")
    if not (pt & pr).any():
        raise DataError(f"{lab('sim_truth')}: no simulated event passes both truth and reco; nothing to learn the "
                        "detector response from")
    data = _array(data, "observed data", lab("data"), columns.get("data") or names)
    if data.shape[1] != d:
        raise DataError(f"{lab('data')} has {data.shape[1]} observables but {lab('sim_reco')} has {d}")
    w = _weights(sim_weights, n, "simulation weights", lab("sim_weights"))
    both = w[pt & pr].sum()
    if not both > 0:
        raise DataError(f"{lab('sim_weights')} (simulation weights): the simulated events passing truth and reco "
                        f"have total weight {both:g}; the detector response needs a positive total")
    wd = _weights(data_weights, len(data), "data weights", lab("data_weights"))
    dt = dtw = None
    if data_truth is not None:
        dt = _array(data_truth, "the data's true truth", lab("data_truth"), columns.get("data_truth") or names)
        if dt.shape[1] != d:
            raise DataError(f"{lab('data_truth')} has {dt.shape[1]} observables but {lab('sim_truth')} has {d}")
        dtw = _weights(data_truth_weights, len(dt), "data-truth weights", lab("data_truth"))
    names = list(names) if names else [f"x{j}" for j in range(d)]
    if len(names) != d:
        raise DataError(f"{len(names)} observable names for {d} observables")
    return UnfoldingInputs(truth, reco, pt, pr, w, data, wd, names, dict(units or {}), dt, dtw, labels)


def check_response(inputs: UnfoldingInputs, bins: int) -> None:
    """The minimum every method needs to learn the detector response: at least ``bins`` (the truth bins per
    observable of the result) simulated events passing truth and reco with a non-zero weight. With fewer,
    some truth bin holds no reconstructed simulated event, P(reco | truth) is undefined there, and the
    result (binned or not) would be the few simulated events' shape, whatever the data say; refused as a
    DataError naming the simulation before anything is trained."""
    both = inputs.pass_truth & inputs.pass_reco & (inputs.sim_weights != 0)
    n = int(both.sum())
    if n < int(bins):
        sim = inputs.labels.get("sim_truth", "sim_truth")
        raise DataError(f"{sim}: only {n} simulated event{'s pass' if n != 1 else ' passes'} truth and reco (of {len(inputs.truth)}); "
                        f"unfolding on {bins} bins per observable needs at least {bins} to estimate the detector "
                        "response (more simulated events, or fewer --bins)")


def integer_columns(x: np.ndarray) -> np.ndarray:
    """(d,) bool: columns whose values are all integers (multiplicities): binned on integer edges, dequantised by flows."""
    return np.all(np.equal(np.mod(x, 1.0), 0.0), axis=0)


def truth_edges(inputs: UnfoldingInputs, bins: int = 20, quantile: float = 0.002) -> list[np.ndarray]:
    """Bin edges per observable from the simulated truth (events passing truth): equal-population bins
    between the ``quantile`` and 1 − ``quantile`` points (integer-aligned for integer columns); values
    beyond them go to the first/last bin where a method bins (IBU) and are clipped in the report."""
    x = inputs.truth[inputs.pass_truth]
    integer = integer_columns(x)
    out = []
    for j in range(x.shape[1]):
        col = x[:, j]
        lo, hi = np.quantile(col, [quantile, 1 - quantile])
        if integer[j]:
            lo, hi = np.floor(lo) - 0.5, np.ceil(hi) + 0.5
            step = max(1, int(np.ceil((hi - lo) / bins)))
            e = np.arange(lo, hi + step, step, dtype=float)
        else:
            e = np.unique(np.quantile(col[(col >= lo) & (col <= hi)], np.linspace(0, 1, bins + 1)))
        if len(e) < 3:
            e = np.linspace(lo - 0.5, hi + 0.5, 3) if hi <= lo else np.linspace(lo, hi, 3)
        out.append(np.asarray(e, float))
    return out


def reco_edges(inputs: UnfoldingInputs, bins: int = 20, quantile: float = 0.002) -> list[np.ndarray]:
    """As :func:`truth_edges`, from the simulated reco events passing reco."""
    proxy = UnfoldingInputs(inputs.reco[inputs.pass_reco], inputs.reco[inputs.pass_reco],
                            np.ones(int(inputs.pass_reco.sum()), bool), np.ones(int(inputs.pass_reco.sum()), bool),
                            inputs.sim_weights[inputs.pass_reco], inputs.data, inputs.data_weights, inputs.names)
    return truth_edges(proxy, bins, quantile)


def bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value of ``x: (n,)`` on ``edges`` with under/overflow clipped into the first/last bin: (n,) int."""
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
