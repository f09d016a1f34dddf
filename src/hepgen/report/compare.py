"""``compare``: every two-sample metric between a reference and a candidate sample, and an HTML report.

Tabular events (n, d) are compared feature by feature and jointly; images (n, H, W) or (n, C, H, W)
through per-event summary features (:mod:`hepgen.report.image_features`) plus their mean images.
The returned dict is JSON-serialisable (non-finite numbers become null); with ``report_dir`` it is
also written there as ``metrics.json`` next to the plots and ``index.html``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.errors import DataError
from hepgen.evaluate.two_sample import c2st_scores
from hepgen.metrics._checks import as_samples, as_weights
from hepgen.metrics.bootstrap import MIN_EVENTS, bootstrap
from hepgen.metrics.histograms import chi2_histograms, common_edges, kl_js_from_samples
from hepgen.metrics.classification import roc_auc
from hepgen.metrics.two_sample import fpd, kpd, wasserstein_1d
from hepgen.report.folder import ReportFolder, jsonable, report_problem
from hepgen.report.html import Page, Table
from hepgen.report.image_features import image_feature_names, image_summary_features, mean_image

C2ST_FOLDS = 5
KPD_BATCH = 2_000


def compare(
    ref: np.ndarray,
    cand: np.ndarray,
    *,
    names: list[str] | None = None,
    ref_weights: np.ndarray | None = None,
    cand_weights: np.ndarray | None = None,
    report_dir: str | Path | None = None,
    seed: int = 0,
    title: str = "",
    max_events: int = 20_000,
    bins: int = 50,
    n_bootstrap: int = 20,
    max_plots: int = 50,
    units: Mapping[str, str] | None = None,
    protocol: str = "hepgen",
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Compare ``cand`` with ``ref``: per-feature W1 (± bootstrap), χ²/ndf, KL(ref‖cand), JS; FPD, KPD, C2ST AUC.

    ``ref``: (n, d), (n,), (n, H, W) or (n, C, H, W); ``cand`` the same trailing shape; weights (n,)
    and (m,). Histograms use ``bins`` common equal-width bins over the central 99.8 % of both samples.
    C2ST uses at most ``max_events`` per sample (5-fold boosted trees). FPD/KPD ``protocol``:
    ``"hepgen"`` (default) extrapolates FPD batches of 0.4–1 × min(n, m, ``max_events``) events and
    draws 10 KPD batches of ≤ min(2000, n/2) events without replacement (so that batches differ);
    ``"jetnet"`` is jetnet 0.2.5's exact protocol (FPD 20k–50k, 20 batches, 10 points; KPD 10 batches
    of 5000, with replacement), comparable with published JetNet numbers.
    Signed (NLO) weights: W1 is that of the signed-weight ECDFs, χ², KL, JS and the C2ST take signed
    weights, FPD and KPD use |w| (``fpd.weights`` / ``kpd.weights`` say so). ``n_eff`` gives the Kish
    effective sample size (Σw)²/Σw² of each sample (n when unweighted).
    ``progress(done, total, what)`` is called after each step (features, C2ST, FPD, KPD, plots).

    Uncertainties: ``w1_err``, ``chi2_ndf_err``, ``kl_err``, ``js_err`` and ``c2st.auc_err`` are the
    standard deviations over ``n_bootstrap`` bootstrap resamples (events with their weights) of at most
    ``max_events`` events per sample (all of them when fewer). W1's is scaled to the full sample sizes by
    √((1/n + 1/m)/(1/n' + 1/m')); the histogram ones are those of the subsample. The AUC's resamples the
    held-out classifier scores (the classifiers stay fixed). FPD and KPD keep the JetNet errors: the fit
    error of the N → ∞ intercept, half the 16–84 % range over batches.

    ``report_dir`` gets the report folder of every command (:mod:`hepgen.report.folder`): ``metrics.json``,
    ``plots/*.png`` (the first ``max_plots`` feature histograms, correlations, a 2-D density for two
    features, mean images) and ``index.html``. The histograms are
    drawn with :func:`hepgen.report.plots.bin_count` bins (Freedman–Diaconis, 10 to 50, at most
    ``bins``), so that small samples are not split into mostly empty bins; ``units`` (feature name →
    unit, e.g. ``{"mass": "GeV"}``, as the generators store them in HDF5) labels their axes.
    Everything is drawn in a temporary folder beside it and moved in only when complete, so an error
    (DataError for bad input, raised before anything is written) never leaves a half-written report;
    an existing report there is replaced file by file.
    """
    if report_dir is not None:
        problem = report_problem(report_dir)
        if problem:
            raise DataError(f"report folder {report_dir}: {problem}.")
    x_ref, x_cand = _events(ref, "ref"), _events(cand, "cand")
    if x_ref.shape[1:] != x_cand.shape[1:]:
        raise DataError(f"ref has events of shape {x_ref.shape[1:]} but cand has {x_cand.shape[1:]}; "
                        "compare needs the same features in both samples.")
    w_ref = as_weights(ref_weights, len(x_ref), "ref_weights")
    w_cand = as_weights(cand_weights, len(x_cand), "cand_weights")
    is_image = x_ref.ndim in (3, 4)
    notes: list[str] = []
    if is_image:
        f_ref, f_cand = image_summary_features(x_ref), image_summary_features(x_cand)
        n_ch = 1 if x_ref.ndim == 3 else x_ref.shape[1]
        if names is not None:
            notes.append("names were ignored: image data are compared through summary features.")
        names = image_feature_names(n_ch)
    else:
        f_ref, f_cand = x_ref, x_cand
        names = _feature_names(names, f_ref.shape[1])
    negative = any(w is not None and (w < 0).any() for w in (w_ref, w_cand))
    if negative:
        notes.append("negative event weights: W1 uses the signed-weight ECDFs; FPD and KPD use |w|; "
                     "χ², KL, JS and the C2ST use the signed weights.")
    total = len(names) + 4 if report_dir is not None else len(names) + 3
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    result: dict[str, Any] = {
        "title": title, "kind": "image" if is_image else "tabular",
        "n_ref": len(x_ref), "n_cand": len(x_cand), "n_features": len(names),
        "weighted": w_ref is not None or w_cand is not None, "seed": seed,
        "n_eff": {"ref": _kish(w_ref, len(x_ref)), "cand": _kish(w_cand, len(x_cand))},
        "protocol": protocol,
    }
    features = {}
    for k, name in enumerate(names):
        features[name] = feature_metrics(f_ref[:, k], f_cand[:, k], w_ref, w_cand, bins=bins,
                                          n_bootstrap=n_bootstrap, max_events=max_events, seed=seed + k)
        step(name)
    few = min(len(x_ref), len(x_cand))
    if few < MIN_EVENTS:
        notes.append(f"bootstrap errors are null (undefined): a sample has {few} events, fewer than the "
                     f"{MIN_EVENTS} a bootstrap needs.")
    undefined = [name for name, f in features.items() if f["chi2"] is None]
    if undefined:
        notes.append(f"χ², KL and JS are null for {', '.join(undefined)}: the total weight inside the histogram "
                     "range is not positive.")
    for key in ("w1_norm", "chi2_ndf", "kl", "js"):
        vals = [f[key] for f in features.values() if f[key] is not None]
        result[f"{key}_mean"] = float(np.mean(vals)) if vals else None
    result.update(_joint_metrics(f_ref, f_cand, w_ref, w_cand, negative, max_events, n_bootstrap, seed, notes,
                                 protocol, step))
    if is_image:
        m_ref, m_cand = mean_image(x_ref, w_ref), mean_image(x_cand, w_cand)
        scale = float(np.abs(m_ref).sum())
        result["image"] = {
            "shape": list(x_ref.shape[1:]),
            "mean_image_rel_l1": float(np.abs(m_cand - m_ref).sum() / scale) if scale > 0 else None,
            "mean_image_max_abs_diff": float(np.abs(m_cand - m_ref).max()),
        }
    result["features"] = features
    result["notes"] = notes
    result["bootstrap"] = {"replicas": n_bootstrap, "max_events": max_events}
    if report_dir is None:
        return jsonable(result)
    with ReportFolder(report_dir) as report:
        _write_plots(report, f_ref, f_cand, w_ref, w_cand, names, features, bins, max_plots,
                     (m_ref, m_cand) if is_image else None, notes, {} if is_image else {**(units or {})})
        result = jsonable(result)
        result = report.finish(result, _page(result))
        step("report")
    return result


def _kish(w: np.ndarray | None, n: int) -> float:
    """Kish effective sample size (Σw)²/Σw² (n without weights)."""
    return float(n) if w is None else float(w.sum() ** 2 / np.sum(w**2))


def feature_metrics(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None, wb: np.ndarray | None, *, bins: int = 50,
                    n_bootstrap: int = 20, max_events: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """W1, W1 / ref std, χ², ndf, χ²/ndf, KL(ref‖cand) and JS of one feature (n,) and (m,), with bootstrap errors.

    The per-feature numbers of :func:`compare` (its docstring: binning, signed weights, the errors), also
    those of the shower comparison. Errors are NaN (null in a report) when a sample has fewer than
    :data:`hepgen.metrics.bootstrap.MIN_EVENTS` events; the values are NaN-free floats or None.
    """
    edges = common_edges(a, b, bins, quantile=0.001)
    chi2, ndf = _safe(lambda: chi2_histograms(a, b, bins=edges, x_weights=wa, y_weights=wb), (None, None))
    kl, js = _safe(lambda: kl_js_from_samples(a, b, bins=edges, x_weights=wa, y_weights=wb), (None, None))
    out: dict[str, Any] = {"w1": None, "w1_err": None, "w1_norm": None, "chi2": chi2, "ndf": ndf,
                           "chi2_ndf": None if chi2 is None else chi2 / ndf, "chi2_ndf_err": None,
                           "kl": kl, "kl_err": None, "js": js, "js_err": None}
    rng = np.random.default_rng(seed)
    ia, ib = _cap(len(a), max_events, rng), _cap(len(b), max_events, rng)
    sub = (a[ia], b[ib], _pick(wa, ia), _pick(wb, ib))
    if chi2 is not None and kl is not None:

        def histogram_metrics(x, y, wx, wy) -> np.ndarray:
            """[χ²/ndf, KL, JS] of one resample; NaN where its weights cancel inside the range."""
            try:
                c, d = chi2_histograms(x, y, bins=edges, x_weights=wx, y_weights=wy)
                return np.array([c / d, *kl_js_from_samples(x, y, bins=edges, x_weights=wx, y_weights=wy)])
            except DataError:
                return np.full(3, np.nan)

        _, errs = bootstrap(histogram_metrics, *sub, n=n_bootstrap, seed=seed, groups=(0, 1, 0, 1))
        out.update(chi2_ndf_err=float(errs[0]), kl_err=float(errs[1]), js_err=float(errs[2]))
    w1 = _safe(lambda: wasserstein_1d(a, b, wa, wb), None)  # null only when a weight sum is ≤ 0
    if w1 is not None:
        _, err = bootstrap(_safe_w1, *sub, n=n_bootstrap, seed=seed, groups=(0, 1, 0, 1))
        err *= np.sqrt((1 / len(a) + 1 / len(b)) / (1 / len(ia) + 1 / len(ib)))
        out.update(w1=w1, w1_err=float(err), w1_norm=_w1_norm(w1, a, wa))
    return out


def _w1_norm(w1: float, a: np.ndarray, wa: np.ndarray | None) -> float | None:
    """W1 / σ_ref with the (signed-)weighted reference variance Σw(a − ā)²/Σw (None when not positive)."""
    if len(a) < 2:
        return None
    if wa is None or (wa >= 0).all():
        var = float(np.cov(a, aweights=wa))
    else:
        mean = float(np.sum(wa * a) / wa.sum())
        var = float(np.sum(wa * (a - mean) ** 2) / wa.sum())
    return w1 / np.sqrt(var) if var > 0 else None


def _safe_w1(x, y, wx, wy) -> float:
    """W1 of one bootstrap resample; NaN when its signed weights sum to ≤ 0."""
    try:
        return wasserstein_1d(x, y, wx, wy)
    except DataError:
        return float("nan")


def _joint_metrics(f_ref: np.ndarray, f_cand: np.ndarray, w_ref, w_cand, negative: bool, max_events: int,
                   n_bootstrap: int, seed: int, notes: list[str], protocol: str = "hepgen",
                   step: Callable[[str], None] = lambda what: None) -> dict[str, Any]:
    """C2ST AUC (± bootstrap), FPD and KPD on all features together (each skipped with a note when too few events)."""
    out: dict[str, Any] = {}
    n_min = min(len(f_ref), len(f_cand))
    if n_min >= 2 * C2ST_FOLDS:
        held_out = c2st_scores(f_ref, f_cand, real_weights=w_ref, generated_weights=w_cand, n_folds=C2ST_FOLDS,
                               max_per_class=max_events, seed=seed)
        auc, auc_err = bootstrap(_safe_auc, *held_out, n=n_bootstrap, seed=seed, groups=(0, 1, 0, 1))
        out["c2st"] = {"auc": auc, "auc_err": auc_err, "classifier": "hgb", "n_folds": C2ST_FOLDS,
                       "n_per_class": [len(held_out[0]), len(held_out[1])]}
    else:
        out["c2st"] = {"auc": None, "auc_err": None}
        notes.append(f"C2ST skipped: it needs at least {2 * C2ST_FOLDS} events per sample.")
    step("c2st")
    weights = "|w| (negative weights enter by their magnitude)" if negative else (
        "w" if w_ref is not None or w_cand is not None else "none")
    if n_min < 4:
        out["fpd"] = {"value": None, "error": None}
        out["kpd"] = {"value": None, "error": None}
        notes.append("FPD and KPD skipped: they need at least 4 events per sample.")
        step("fpd")
        step("kpd")
        return out
    kw = dict(real_weights=w_ref, generated_weights=w_cand, seed=seed, protocol=protocol)
    if protocol == "jetnet":  # jetnet 0.2.5's defaults, batches with replacement
        value, error = fpd(f_ref, f_cand, **kw)
        out["fpd"] = {"value": value, "error": error, "protocol": "jetnet", "min_batch": 20_000, "max_batch": 50_000,
                      "num_batches": 20, "num_points": 10, "weights": weights}
        step("fpd")
        value, error = kpd(f_ref, f_cand, **kw)
        out["kpd"] = {"value": value, "error": error, "protocol": "jetnet", "batch_size": 5_000, "num_batches": 10,
                      "degree": 4, "weights": weights}
        step("kpd")
        return out
    max_n = min(n_min, max_events)
    min_n = max(2, int(0.4 * max_n))
    value, error = fpd(f_ref, f_cand, min_samples=min_n, max_samples=max_n, num_batches=10, num_points=5, **kw)
    out["fpd"] = {"value": value, "error": error, "protocol": "hepgen", "min_batch": min_n, "max_batch": max_n,
                  "num_batches": 10, "num_points": 5, "weights": weights}
    step("fpd")
    batch = min(KPD_BATCH, n_min // 2)  # batches drawn without replacement: at most half, so that they differ
    value, error = kpd(f_ref, f_cand, num_batches=10, batch_size=batch, **kw)
    out["kpd"] = {"value": value, "error": error, "protocol": "hepgen", "batch_size": batch, "num_batches": 10,
                  "degree": 4, "weights": weights}
    step("kpd")
    return out


def _write_plots(report: ReportFolder, f_ref, f_cand, w_ref, w_cand, names: Sequence[str], features: dict,
                 bins: int, max_plots: int, means, notes: list[str], units: Mapping[str, str]) -> None:
    """Draw every figure into the report's ``plots/``: joint distributions first, then the features."""
    from hepgen.report import plots

    joint = "Joint distributions"
    if means is not None:
        plots.plot_mean_images(means[0], means[1], report.figure_path("mean_images.png"))
        report.add_figure("mean_images.png", "mean images", joint, small=False)
    if len(names) > 1:
        plots.plot_correlation_matrices(f_ref, f_cand, report.figure_path("correlations.png"), names=names,
                                        ref_weights=w_ref, cand_weights=w_cand)
        report.add_figure("correlations.png", "correlation matrices", joint, small=False)
    if len(names) == 2 and means is None:
        k_2d = [plots.bin_count(f_ref[:, j], f_cand[:, j], weights=(w_ref, w_cand), high=min(bins, 40))
                for j in range(2)]
        plots.plot_density_2d(f_ref, f_cand, report.figure_path("density_2d.png"), ref_weights=w_ref,
                              cand_weights=w_cand,
                              edges=tuple(common_edges(f_ref[:, j], f_cand[:, j], k_2d[j], quantile=0.001)
                                          for j in range(2)),
                              names=names, units=[units.get(n) for n in names])
        report.add_figure("density_2d.png", "2-D density", joint, small=False)
    for k, name in enumerate(names[:max_plots]):
        f = features[name]
        label = f"χ²/ndf = {f['chi2_ndf']:.3g} ({bins} bins)" if f["chi2_ndf"] is not None else ""
        png = f"hist_{k:03d}_{_slug(name)}.png"
        k_bins = plots.bin_count(f_ref[:, k], f_cand[:, k], weights=(w_ref, w_cand), high=min(bins, plots.MAX_BINS))
        plots.plot_feature_histogram(f_ref[:, k], f_cand[:, k], report.figure_path(png),
                                     edges=common_edges(f_ref[:, k], f_cand[:, k], k_bins, quantile=0.001),
                                     ref_weights=w_ref, cand_weights=w_cand, name=name, unit=units.get(name),
                                     annotation=label)
        report.add_figure(png, name, "Features")
    if len(names) > max_plots:
        notes.append(f"histograms are drawn for the first {max_plots} of {len(names)} features only.")


def _page(result: dict[str, Any]) -> Page:
    """index.html's tables, from the final (JSON-ready) result dict; the report adds the figures."""
    overall = [
        ("C2ST AUC (0.5 = indistinguishable)", result["c2st"]["auc"], result["c2st"]["auc_err"]),
        ("FPD (Fréchet physics distance)", result["fpd"]["value"], result["fpd"]["error"]),
        ("KPD (kernel physics distance)", result["kpd"]["value"], result["kpd"]["error"]),
        ("mean W1 / σ_ref", result["w1_norm_mean"], None),
        ("mean χ²/ndf", result["chi2_ndf_mean"], None),
        ("mean JS divergence [nats]", result["js_mean"], None),
    ]
    if "image" in result:
        overall.append(("mean image relative L1", result["image"]["mean_image_rel_l1"], None))
    return Page(
        title=result["title"] or "hepgen compare",
        meta=[(f"candidate: {result['n_cand']} events (orange in the histograms) compared with reference: "
               f"{result['n_ref']} events (blue); ratios are candidate / reference"),
              (f"{result['kind']} data · {result['n_features']} features · weighted: {result['weighted']}"
               f" · seed {result['seed']}")],
        notes=result["notes"],
        tables=[Table("Overall", ["metric", "value", "error"], [list(r) for r in overall]),
                feature_table(result["features"])],
    )


def feature_table(features: Mapping[str, Mapping[str, Any]], caption: str = "Per feature (± bootstrap standard "
                  "deviations)") -> Table:
    """The per-feature table of :func:`feature_metrics` results (``{name: metrics}``)."""
    rows = [[name, f["w1"], f["w1_err"], f["w1_norm"], f["chi2"], f["ndf"], f["chi2_ndf"], f["chi2_ndf_err"],
             f["kl"], f["kl_err"], f["js"], f["js_err"]] for name, f in features.items()]
    return Table(caption, ["feature", "W1", "± W1", "W1/σ_ref", "χ²", "ndf", "χ²/ndf", "± χ²/ndf", "KL(ref‖cand)",
                           "± KL", "JS", "± JS"], rows)


def _events(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim not in (1, 2, 3, 4):
        raise DataError(f"{name}: expected events of shape (n,), (n, d), (n, H, W) or (n, C, H, W); got {arr.shape}.")
    flat = as_samples(arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:]))), name, ndim=2)
    return flat.reshape(arr.shape) if arr.ndim > 1 else flat


def _feature_names(names: Sequence[str] | None, d: int) -> list[str]:
    if names is None:
        return [f"x{k}" for k in range(d)]
    names = [str(n) for n in names]
    if len(names) != d:
        raise DataError(f"names: {len(names)} names given for {d} features.")
    if len(set(names)) != d:
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"names: feature name {dup!r} appears more than once.")
    return names


def _pick(w: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if w is None else w[idx]


def _safe_auc(s1, s0, w1, w0) -> float:
    """roc_auc of one bootstrap resample; NaN when its signed weights leave a class with total ≤ 0."""
    try:
        return roc_auc(s1, s0, w1, w0)
    except DataError:
        return float("nan")


def _cap(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def _safe(fn, fallback):
    """Histogram metrics of a feature whose weights cancel inside the range are undefined: report null."""
    try:
        return fn()
    except DataError:
        return fallback


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:40] or "feature"
