"""``hepgen compare`` for showers: CaloChallenge-style evaluation of a candidate against a reference sample.

    features    :func:`hepgen.metrics.shower_observables.shower_features` per shower; per feature the numbers ``compare``
                gives a feature (:func:`hepgen.report.compare.feature_metrics`: W1 and W1/σ_ref, χ²/ndf, KL,
                JS, each with its bootstrap error) and the weighted means
    classifier  ``protocol="hepgen"`` (default): hepgen's light DNN test AUC on high-level features and on
                normalised cells (:func:`hepgen.evaluate.calochallenge.classifier_auc`); with ``floor`` (a second,
                independent reference sample) the same AUCs of reference against floor: the best a candidate can do
    protocol    ``protocol="calochallenge"``: instead, the CaloChallenge 2022 evaluation
                (:func:`hepgen.evaluate.calochallenge.calochallenge_metrics`): its DNN (3 × 2048 LeakyReLU, 50
                epochs, calibrated) on high- and low-level inputs with AUC and JSD, FPD and KPD ×10³ (jetnet) and
                the separation power of each feature histogram, each with its error, and all of them for the
                floor when given
    response    mean E_dep/E_inc and σ/E in bins of E_inc, reference and candidate
    report      with ``report_dir``, the report folder of every command (:mod:`hepgen.report.folder`):
                metrics.json, plots/ (response, feature histograms with ratio panels in E_inc bins), index.html

Event weights (``ref_weights``, ``cand_weights``; negative ones allowed) enter the features and the response
as in ``compare``; the classifier is trained unweighted (a note says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepgen.calo.shower_layout import Showers, read_showers
from hepgen.errors import ConfigError, DataError
from hepgen.metrics._checks import as_weights
from hepgen.metrics.bootstrap import MIN_EVENTS
from hepgen.evaluate.calochallenge import (
    PROTOCOLS,
    ShowerSample,
    calochallenge_metrics,
    classifier_auc,
    high_level_inputs,
)
from hepgen.metrics.shower_observables import (
    classifier_inputs,
    response_in_bins,
    shower_features,
)
from hepgen.report.compare import feature_metrics
from hepgen.options import excerpt
from hepgen.report.folder import ReportFolder, jsonable, report_problem

__all__ = ["compare_showers", "shower_classifier_auc"]

PLOTTED = ("E_0", "E_1", "E_2", "response", "centroid_x_0", "width_x_1", "width_y_1", "sparsity_1", "brightest_1")


def _showers(x: Any, limit: int | None, geometry: Any = None) -> Showers:
    return x if isinstance(x, Showers) else read_showers(x, limit=limit, geometry=geometry)


def plotted(features: Any) -> list[str]:
    """The features drawn per E_inc bin: :data:`PLOTTED` for the simulator's layout; for a CaloChallenge
    geometry the energy of its first three layers, the response, and the centroid, widths, sparsity and
    brightest cell of its first layer binned in angle."""
    if all(name in features for name in PLOTTED):
        return list(PLOTTED)
    energies = [k for k in features if k.startswith("E_") and k != "E_total"][:3]
    binned = next((k.removeprefix("centroid_x_") for k in features if k.startswith("centroid_x_")), None)
    shape = ([f"centroid_x_{binned}", f"width_x_{binned}", f"width_y_{binned}", f"sparsity_{binned}",
              f"brightest_{binned}"] if binned is not None else [])
    return [*energies, "response", *shape]


def _weights(w: Any, showers: Showers, name: str, limit: int | None) -> np.ndarray | None:
    if w is not None and limit is not None and np.ndim(w) == 1 and len(w) > len(showers):
        w = np.asarray(w)[:limit]
    w = as_weights(w, len(showers), name)
    if w is not None and not w.sum() > 0:
        raise DataError(f"{name}: the weights sum to {w.sum():g}; the total must be positive.")
    return w


def _sample(showers: Showers, features: dict[str, np.ndarray]) -> ShowerSample:
    """What the CaloChallenge protocol reads of showers: energies, every cell in one row, the features."""
    return ShowerSample(showers.energy, np.concatenate([x.reshape(len(x), -1) for x in showers.list()], axis=1),
                        features)


def _mean(x: np.ndarray, w: np.ndarray | None) -> float:
    return float(np.mean(x)) if w is None else float(np.sum(w * x) / w.sum())


def shower_classifier_auc(ref: Showers, other: Showers, kind: str = "cells", *, threshold: float = 0.0,
                          epochs: int | None = None, seed: int = 0, device: str = "auto",
                          max_per_class: int | None = None) -> dict[str, Any]:
    """``protocol="hepgen"``'s classifier test of ``other`` against ``ref`` on ``kind`` inputs (``"high"`` or
    ``"cells"``, :func:`~hepgen.metrics.shower_observables.classifier_inputs`; ``"challenge"``: the CaloChallenge
    high-level inputs, :func:`hepgen.evaluate.calochallenge.high_level_inputs`, which lack the sparsities): the one
    that :func:`compare_showers` runs, also on its own (``max_per_class`` caps each sample by a seeded subsample)."""
    layout = ref.feature_layout()
    if kind == "challenge":
        a, b = (high_level_inputs(_sample(s, shower_features(s.list(), s.energy, threshold=threshold, **layout)))
                for s in (ref, other))
    else:
        a = classifier_inputs(ref.list(), ref.energy, kind, threshold=threshold, **layout)
        b = classifier_inputs(other.list(), other.energy, kind, threshold=threshold, **layout)
    # a column of one value in both samples (a voxel no shower reaches) tells them apart no better
    # than nothing; dropped, as the network's standardisation cannot scale it
    both = np.concatenate([a, b])
    a, b = a[:, both.min(0) < both.max(0)], b[:, both.min(0) < both.max(0)]
    return classifier_auc(a, b, epochs=epochs, seed=seed, device=device, max_per_class=max_per_class)


def compare_showers(ref: Any, cand: Any, *, floor: Any = None, report_dir: str | Path | None = None,
                    energy_edges: Any = None, classifier_epochs: int | None = None,
                    max_showers: int | None = None, threshold: float = 0.0, seed: int = 0, ref_weights: Any = None,
                    cand_weights: Any = None, n_bootstrap: int = 20, bins: int = 50, max_events: int = 20_000,
                    classifier: bool = True, title: str = "", protocol: str = "hepgen",
                    device: str = "auto", protocol_options: dict[str, Any] | None = None,
                    geometry: Any = None) -> dict[str, Any]:
    """Compare shower samples (files ``path[:group]`` or :class:`~hepgen.calo.shower_layout.Showers`); returns the metrics.

    ``geometry``: the files are CaloChallenge files of this binning XML (``binning.xml[:particle]``): their layers,
    centroids and widths in η (x) and φ (y) come from its bins (:mod:`hepgen.data.calochallenge`).
    ``energy_edges``: the E_inc bins [GeV] of the response (default 1, 10, 30, 60, 100; with a geometry four
    logarithmic bins over the reference's energies). ``ref_weights``/``cand_weights``: (n,) per-shower weights.
    ``n_bootstrap``, ``bins``, ``max_events``: the per-feature metrics and their bootstrap errors, as in
    :func:`hepgen.report.compare.compare`.
    ``protocol``: ``hepgen`` (default) or ``calochallenge`` (module doc); ``classifier_epochs`` overrides the
    protocol's epochs (30 or 50); ``classifier=False`` skips the DNNs; ``protocol_options`` go to
    :func:`~hepgen.evaluate.calochallenge.calochallenge_metrics` (``max_per_class``, ``fpd_options``,
    ``kpd_options``). Every input is read and checked before any work starts.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {excerpt(protocol)} for showers; use {' or '.join(map(repr, PROTOCOLS))}")
    if report_dir is not None and report_problem(report_dir):
        raise DataError(f"report folder {report_dir}: {report_problem(report_dir)}.")
    r, c = _showers(ref, max_showers, geometry), _showers(cand, max_showers, geometry)
    f_showers = _showers(floor, max_showers, geometry) if floor is not None else None
    for other, what in ((c, "candidate"), (f_showers, "floor")):
        if other is not None and {k: v.shape[1:] for k, v in other.layers.items()} != \
                {k: v.shape[1:] for k, v in r.layers.items()}:
            raise DataError(f"the {what} {other.spec or 'showers'} has layers "
                            f"{ {k: v.shape[1:] for k, v in other.layers.items()} }, the reference "
                            f"{ {k: v.shape[1:] for k, v in r.layers.items()} }: compare needs one layout")
    wr = _weights(ref_weights, r, "ref_weights", max_showers)
    wc = _weights(cand_weights, c, "cand_weights", max_showers)
    if energy_edges is None:  # the simulator's 1-100 GeV; a CaloChallenge file's own range in 4 log bins
        energy_edges = (1, 10, 30, 60, 100) if r.geometry is None else \
            np.geomspace(float(r.energy.min()), float(r.energy.max()) * (1 + 1e-9), 5)
    edges = np.asarray(energy_edges, dtype=float)
    layout = r.feature_layout()
    fr = shower_features(r.list(), r.energy, threshold=threshold, **layout)
    fc = shower_features(c.list(), c.energy, threshold=threshold, **layout)
    notes: list[str] = []
    result: dict[str, Any] = {"title": title, "n_ref": len(r), "n_cand": len(c),
                              "weighted": wr is not None or wc is not None, "seed": seed,
                              "bootstrap": {"replicas": n_bootstrap, "max_events": max_events}, "features": {}}
    for k, name in enumerate(fr):
        result["features"][name] = {
            **feature_metrics(fr[name], fc[name], wr, wc, bins=bins, n_bootstrap=n_bootstrap, max_events=max_events,
                              seed=seed + k),
            "mean_ref": _mean(fr[name], wr), "mean_cand": _mean(fc[name], wc)}
    if min(len(r), len(c)) < MIN_EVENTS:
        notes.append(f"bootstrap errors are null (undefined): a sample has {min(len(r), len(c))} showers, fewer "
                     f"than the {MIN_EVENTS} a bootstrap needs.")
    result["classifier"] = {}
    result["protocol"] = protocol
    if protocol == "calochallenge":
        if result["weighted"]:
            notes.append("the CaloChallenge protocol judges the unweighted showers; the features and the response "
                         "are weighted.")
        floor_sample = None
        if f_showers is not None:
            floor_sample = _sample(f_showers, shower_features(f_showers.list(), f_showers.energy, threshold=threshold,
                                                              **layout))
        challenge = calochallenge_metrics(_sample(r, fr), _sample(c, fc), floor_sample, epochs=classifier_epochs,
                                          seed=seed, n_bootstrap=max(n_bootstrap, 2), device=device,
                                          classifier=classifier, **(protocol_options or {}))
        notes += challenge.pop("notes")
        result.update({k: v for k, v in challenge.items() if k != "protocol"})
    elif classifier:
        if result["weighted"]:
            notes.append("the classifier AUCs are of the unweighted showers; the features and the response are "
                         "weighted.")
        pairs = [("candidate", c)] + ([("floor", f_showers)] if f_showers is not None else [])
        for label, other in pairs:
            for kind in ("high", "cells"):
                result["classifier"][f"{label}_{kind}"] = shower_classifier_auc(
                    r, other, kind, threshold=threshold, epochs=classifier_epochs, seed=seed, device=device)
    rb = response_in_bins(fr["response"], r.energy, edges, wr)
    cb = response_in_bins(fc["response"], c.energy, edges, wc)
    result["response"] = {"edges": edges.tolist(), "ref": {k: v.tolist() for k, v in rb.items()},
                          "cand": {k: v.tolist() for k, v in cb.items()}}
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.abs(cb["mean"] / rb["mean"] - 1.0)
    result["response"]["max_rel_deviation"] = float(np.nanmax(dev)) if np.isfinite(dev).any() else None
    result["notes"] = notes
    result = jsonable(result)
    if report_dir is None:
        return result
    from hepgen.report.compare import feature_table
    from hepgen.report.html import Page, Table
    from hepgen.report.shower_plots import plot_feature_in_energy_bins, plot_response

    with ReportFolder(report_dir) as report:
        plot_response(rb, cb, report.figure_path("response.png"))
        report.add_figure("response.png", "response and resolution against E_inc", "Response", small=False)
        for name in plotted(fr):
            unit = "MeV" if name.startswith(("E_", "brightest")) else "mm" if name.startswith(("centroid", "width")) \
                else None
            for path in plot_feature_in_energy_bins(fr[name], fc[name], r.energy, c.energy, edges, report.plot_dir,
                                                    name, unit, ref_weights=wr, cand_weights=wc):
                i = int(path.stem.rsplit("_E", 1)[1])
                report.add_figure(path.name, f"{name}, {edges[i]:g} ≤ E_inc < {edges[i + 1]:g} GeV", name)
        auc = [[k, v["auc"], v["auc_err"], v["n_test"]] for k, v in result["classifier"].items()]
        challenge_tables = _challenge_tables(result) if protocol == "calochallenge" else []
        resp = result["response"]
        response_rows = [[f"{lo:g}–{hi:g}", resp["ref"]["mean"][i], resp["cand"]["mean"][i],
                          resp["ref"]["resolution"][i], resp["cand"]["resolution"][i],
                          resp["ref"]["count"][i], resp["cand"]["count"][i]]
                         for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
        page = Page(title=title or "hepgen compare: showers",
                    meta=[f"candidate: {len(c)} showers (orange) compared with reference: {len(r)} showers (blue)",
                          f"weighted: {result['weighted']} · seed {seed}"],
                    notes=notes,
                    tables=[*(challenge_tables or [
                        Table("Classifier AUC (0.5 = indistinguishable; floor: reference vs an independent "
                              "reference)", ["test", "AUC", "± (Hanley–McNeil)", "test showers"], auc)]),
                            Table("Response E_dep/E_inc and resolution per E_inc bin [GeV]",
                                  ["E_inc", "mean ref", "mean cand", "σ/E ref", "σ/E cand", "showers ref",
                                   "showers cand"], response_rows),
                            feature_table(result["features"])])
        result = report.finish(result, page)
    return result


def _challenge_tables(result: dict[str, Any]) -> list[Any]:
    """The CaloChallenge protocol's tables: classifiers (AUC, JSD), FPD/KPD, separation powers (candidate, floor)."""
    from hepgen.report.html import Table

    cls = [[k, v["auc"], v["auc_err"], v["jsd"], v["jsd_err"], v["best_epoch"], v["n_test"]]
           for k, v in result["classifier"].items()]
    distances = [[label, result["fpd"][label]["value"], result["fpd"][label]["error"], result["kpd"][label]["value"],
                  result["kpd"][label]["error"]] for label in result["fpd"]]
    powers = result["separation_power"]
    labels = list(powers)
    rows = [[name, *[x for label in labels for x in (powers[label][name]["value"], powers[label][name]["error"])]]
            for name in powers.get("candidate", {})]
    return [Table("CaloChallenge classifier (evaluate.py's DNN, calibrated; AUC 0.5 and JSD 0 = indistinguishable; "
                  "errors: bootstrap of the evaluation part)",
                  ["test", "AUC", "±", "JSD", "±", "kept epoch", "test showers"], cls),
            Table("FPD and KPD ×10³ on the high-level features (jetnet's conventions and errors)",
                  ["sample", "FPD ×10³", "±", "KPD ×10³", "±"], distances),
            Table("Separation power of each feature histogram (0 = identical, 1 = disjoint; error: bootstrap)",
                  ["feature", *[x for label in labels for x in (label, "±")]], rows)]
