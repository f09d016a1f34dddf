"""The evaluation of generated calorimeter showers: the CaloChallenge 2022 protocol and hepgen's lighter default.

Both judge a candidate sample against a reference and, given a floor (a second, independent reference
sample), the reference against the floor measured the same way: the best a candidate can do.

``protocol="hepgen"`` (the default; ``hepgen compare`` on showers without ``--protocol``)
    classifier  an MLP of 2 × 512 ReLU units, dropout 0.2 (a hepgen :class:`~hepgen.classifier.Classifier`
                trained by the engine: Adam, lr 2·10⁻⁴, batches of 1000, 30 epochs), inputs standardised,
                a seeded 60/20/20 train / validation / test split, the epoch of lowest validation loss;
                the test AUC with its Hanley–McNeil error. Inputs: :func:`hepgen.metrics.shower_observables
                .classifier_inputs` (high-level features or normalised cells).

``protocol="calochallenge"`` (``hepgen compare --protocol calochallenge``; :func:`calochallenge_metrics`):
the conventions of the challenge's ``code/evaluate.py`` and ``code/evaluate_plotting_helper.py``
(github.com/CaloChallenge/homepage) and of its results paper (arXiv:2410.21611):

    classifier  evaluate.py's DNN at cls_n_layer = 2, cls_n_hidden = 2048: an input layer and two hidden
                layers, i.e. three Linear(·, 2048) each followed by LeakyReLU (slope 0.01), no dropout, one
                logit out; Adam, lr 2·10⁻⁴, batches of 1000, 50 epochs; the inputs as they are (not
                scaled). Both samples are cut to the same size (evaluate.py's ttv_split requires it) and
                split 60/20/20 into train / selection / evaluation parts; the kept epoch is the first of
                highest accuracy (rounded sigmoid) on the selection part; an isotonic regression fitted on
                the selection part's outputs (out_of_bounds="clip", y in [10⁻⁶, 1 − 10⁻⁶]) calibrates
                them; on the evaluation part: AUC and JSD = (ln 2 − BCE) / ln 2 of the calibrated outputs
                (1 = separable, 0 = identical), each with the spread of a bootstrap of the evaluation
                part's scores (evaluate.py reports none; the paper's spread over retrainings is larger).
    inputs      low-level ("cls-low"): log10 E_inc and every cell / E_inc (both in MeV); high-level
                ("cls-high"): log10 E_inc, log10(E_k + 10⁻⁸) per layer, then the centroids in η (x) and φ
                (y) and the widths in η and φ of every layer, each / 100 (mm) — :func:`low_level_inputs`,
                :func:`high_level_inputs`. (E_k < 0, from noise, enters as 0.)
    FPD, KPD    jetnet's fpd and kpd (:func:`hepgen.metrics.two_sample.fpd` / ``kpd`` with
                ``protocol="jetnet"``: jetnet 0.2.5's numbers, its defaults: batches of 20,000–50,000 (FPD) and
                10 × 5,000 (KPD) drawn with replacement, features / max |reference|) on the high-level
                inputs with E_dep / E_inc appended (:func:`fpd_features`); ×10³ as the paper quotes them,
                with jetnet's errors (the fit's, and half the 16–84 % spread of the KPD batches).
    separation  the separation power (triangular discrimination, :func:`hepgen.metrics.histograms
    power       .separation_power`) of each histogram evaluate_plotting_helper draws: E_dep / E_inc, E_k,
                centroids and widths in η and φ per layer, and the energies of all cells (``cells``). Bins:
                100 equal ones over the reference's range (E_k: 39 logarithmic ones from the reference's
                0.1 % quantile of positive values up to its maximum; cells: 49 such) — the challenge fixes ranges per dataset in mm, which no other geometry shares;
                entries outside the range are left out of both histograms, as there. Error: the spread
                over bootstrap replicas of both samples on the same bins.

Deviations from evaluate.py: the network trains in float32 (evaluate.py sets float64), the split is seeded
(evaluate.py shuffles with numpy's global state) and there is no early break at accuracy 1 (the kept
epoch is the same: later epochs cannot beat it); dataset 1's E_dep / E_inc histograms per discrete
incident energy are not drawn (hepgen's energies are continuous).
Cost: the DNN has ~8.4 M weights (high-level) to ~9.4 M (504 cells); one thread of this machine's CPU takes
~1.1 ms per training shower and epoch (measured: 5.1 CPU-s for an epoch of 4,000 with 1,000 to select on,
at load 8), so 50 epochs on 2 × 100,000 showers (120,000 to train) are ~2 CPU-hours per classifier, four
with a floor; cap the samples with ``max_per_class`` or use a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepgen.errors import ConfigError, DataError
from hepgen.evaluate.two_sample import HeldOutScores, held_out_scores
from hepgen.metrics.bootstrap import bootstrap
from hepgen.metrics.classification import auc_standard_error, roc_auc
from hepgen.metrics.histograms import separation_power
from hepgen.metrics.two_sample import fpd, kpd
from hepgen.options import excerpt

__all__ = ["PROTOCOLS", "ShowerSample", "calochallenge_metrics", "classifier_auc", "fpd_features",
           "cell_separation_power", "high_level_inputs", "histogram_features", "jsd", "low_level_inputs",
           "separation_powers"]

#: the classifier of each protocol (module doc): network, training, selection of the epoch, calibration
PROTOCOLS: dict[str, dict[str, Any]] = {
    "hepgen": {"hidden": (512, 512), "activation": "relu", "dropout": 0.2, "epochs": 30, "batch_size": 1000,
               "lr": 2e-4, "split": (0.6, 0.2, 0.2), "select": "loss", "calibrate": "none",
               "preprocess": "standard", "standardise": True, "same_size": False},
    "calochallenge": {"hidden": (2048, 2048, 2048), "activation": "leaky_relu", "dropout": 0.0, "epochs": 50,
                      "batch_size": 1000, "lr": 2e-4, "split": (0.6, 0.2, 0.2), "select": "accuracy",
                      "calibrate": "isotonic", "preprocess": "none", "standardise": False, "same_size": True},
}

#: ε of evaluate.py's log10(E_k + ε)
LOG_EPSILON = 1e-8


def _protocol(name: str) -> dict[str, Any]:
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol {excerpt(name)}; use {' or '.join(map(repr, PROTOCOLS))}")
    return PROTOCOLS[name]


def classifier_auc(reference: np.ndarray, candidate: np.ndarray, *, protocol: str = "hepgen",
                   hidden: Sequence[int] | None = None, epochs: int | None = None, batch_size: int | None = None,
                   lr: float | None = None, split: Sequence[float] | None = None, dropout: float | None = None,
                   seed: int = 0, max_per_class: int | None = None, device: str = "auto", n_bootstrap: int = 100,
                   return_scores: bool = False) -> dict[str, Any] | tuple[dict[str, Any], HeldOutScores]:
    """The classifier test of ``candidate`` (m, d) against ``reference`` (n, d) (label 1) of ``protocol``
    (module doc: ``hepgen`` or ``calochallenge``); ``hidden`` ... ``dropout`` override the protocol's values.

    Returns ``{"auc", "auc_err", "val_loss", "best_epoch", "n_train", "n_test", "protocol", "settings"}``: the
    test AUC and its error, the kept epoch and its validation loss, the training and the test event counts,
    and the classifier's settings as used. ``hepgen``: ``auc_err`` is Hanley–McNeil's. ``calochallenge``
    adds ``jsd`` and ``val_accuracy`` (of the kept epoch on the selection part); ``auc_err``/``jsd_err`` are
    the spread of ``n_bootstrap`` replicas of the evaluation part's calibrated scores (Hanley–McNeil's error
    in ``auc_err_hanley_mcneil``). ``max_per_class`` caps each sample by a seeded subsample first (with
    ``calochallenge`` both are cut to the smaller size anyway). ``return_scores=True`` also returns the
    :class:`~hepgen.evaluate.two_sample.HeldOutScores` (its ``classifiers[0]`` is the trained network).
    """
    p = dict(_protocol(protocol))
    for key, value in (("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size), ("lr", lr),
                       ("split", split), ("dropout", dropout)):
        if value is not None:
            p[key] = tuple(value) if key in ("hidden", "split") else value
    cap = max_per_class
    if p["same_size"]:
        n = min(len(reference), len(candidate))
        cap = n if cap is None else min(cap, n)
    settings = {"hidden": p["hidden"], "activation": p["activation"], "dropout": p["dropout"], "epochs": p["epochs"],
                "batch_size": p["batch_size"], "lr": p["lr"], "preprocess": p["preprocess"], "select": p["select"],
                "calibrate": p["calibrate"], "device": device}
    held = held_out_scores(reference, candidate, classifier="dnn", split=p["split"], max_per_class=cap, seed=seed,
                           settings=settings, standardise=p["standardise"])
    net = held.classifiers[0]
    auc = held.auc()
    n1, n0 = len(held.real), len(held.generated)
    result: dict[str, Any] = {"auc": auc, "auc_err": auc_standard_error(auc, n1, n0), "val_loss": net.val_loss_,
                              "best_epoch": net.best_epoch_, "n_train": held.n_train[0], "n_test": n1 + n0,
                              "protocol": protocol,
                              "settings": {**{k: v for k, v in net.settings.items()
                                              if k not in ("device", "val_fraction")},
                                           "hidden": list(net.settings["hidden"]), "split": list(p["split"]),
                                           "standardise": p["standardise"]}}
    if protocol == "calochallenge":
        jsd_value = jsd(held.real, held.generated)
        auc_e, jsd_e = _bootstrap_errors(held.real, held.generated, n_bootstrap, seed)
        result.update(auc_err=auc_e, auc_err_hanley_mcneil=result["auc_err"], jsd=jsd_value, jsd_err=jsd_e,
                      val_accuracy=net.val_accuracy_, n_bootstrap=n_bootstrap)
    return (result, held) if return_scores else result


def jsd(real_scores: np.ndarray, generated_scores: np.ndarray) -> float:
    """evaluate.py's JSD of calibrated scores: (ln 2 − BCE) / ln 2, BCE the mean binary cross-entropy of the
    scores of ``real_scores`` (n,) (label 1) and ``generated_scores`` (m,) (label 0); on a balanced set 0 for
    indistinguishable samples and 1 for separable ones."""
    s1 = np.clip(np.asarray(real_scores, dtype=np.float64), 1e-300, 1.0)
    s0 = np.clip(1.0 - np.asarray(generated_scores, dtype=np.float64), 1e-300, 1.0)
    bce = -(np.sum(np.maximum(np.log(s1), -100.0)) + np.sum(np.maximum(np.log(s0), -100.0))) / (len(s1) + len(s0))
    return float((math.log(2.0) - bce) / math.log(2.0))  # torch's BCELoss clamps the logarithms at −100


def _bootstrap_errors(s1: np.ndarray, s0: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    """The bootstrap spreads of the AUC and the JSD of the held-out scores, each class resampled on its own."""
    def both(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([roc_auc(a, b), jsd(a, b)])

    _, spread = bootstrap(both, s1, s0, n=n, seed=seed)
    return float(spread[0]), float(spread[1])


# -- the inputs --------------------------------------------------------------------------------------
@dataclass
class ShowerSample:
    """What the protocol reads of one sample of n showers.

    ``energy``: (n,) incident energies [GeV]; ``cells``: (n, voxels) every cell [MeV], layer after layer;
    ``features``: the high-level features of :func:`hepgen.metrics.shower_observables.shower_features`
    ({name: (n,)} with ``E_k``, ``response``, ``centroid_x_k``, ``centroid_y_k``, ``width_x_k``, ``width_y_k``
    in MeV and mm, x ↔ η and y ↔ φ), whatever geometry computed them.
    """

    energy: np.ndarray
    cells: np.ndarray
    features: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        self.cells = np.asarray(self.cells, dtype=np.float64).reshape(len(self.energy), -1)
        for name, values in self.features.items():
            if len(values) != len(self.energy):
                raise DataError(f"shower feature {name!r} has {len(values)} rows but there are {len(self.energy)} "
                                "showers")

    @classmethod
    def from_layers(cls, layers: Sequence[np.ndarray], energy: np.ndarray, *, threshold: float = 0.0) -> ShowerSample:
        """From K layers (n, rows_k, cols_k) in MeV and the energy (n,) in GeV on hepgen's square layers."""
        from hepgen.metrics.shower_observables import shower_features

        layers = [np.asarray(layer, dtype=np.float64) for layer in layers]
        features = shower_features(layers, energy, threshold=threshold)
        return cls(energy, np.concatenate([layer.reshape(len(layer), -1) for layer in layers], axis=1), features)

    def __len__(self) -> int:
        return len(self.energy)

    @property
    def labels(self) -> list[str]:
        """The layers' labels k of the features E_k, in order: 0 … K−1, or a CaloChallenge geometry's layer ids."""
        labels = [name[2:] for name in self.features if name.startswith("E_") and name != "E_total"]
        if not labels:
            raise DataError("the shower features have no layer energies (E_0, E_1, ...)")
        return labels

    @property
    def layers(self) -> int:
        """The number of layers K (the features E_k)."""
        return len(self.labels)


def _shape_names(f: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    """centroid_x_k, centroid_y_k, width_x_k, width_y_k, each block over the layers that have them (a
    CaloChallenge geometry's layers binned in angle, as evaluate.py's layersBinnedInAlpha)."""
    return [f"{n}_{i}" for n in ("centroid_x", "centroid_y", "width_x", "width_y") for i in labels
            if f"{n}_{i}" in f]


def low_level_inputs(sample: ShowerSample) -> np.ndarray:
    """evaluate.py's low-level classifier inputs (n, 1 + voxels): log10 E_inc, then every cell / E_inc (MeV)."""
    e_mev = 1000.0 * sample.energy[:, None]
    return np.concatenate([np.log10(e_mev), sample.cells / e_mev], axis=1)


def high_level_inputs(sample: ShowerSample) -> np.ndarray:
    """evaluate.py's high-level classifier inputs (n, 1 + 5K): log10 E_inc [MeV], log10(E_k + 10⁻⁸) [MeV]
    per layer (E_k < 0 as 0), then centroid_x_k / 100, centroid_y_k / 100, width_x_k / 100, width_y_k / 100
    (mm), each block over the layers that have them (all of hepgen's; a CaloChallenge geometry's binned in angle)."""
    f, labels = sample.features, sample.labels
    cols = [np.log10(1000.0 * sample.energy)]
    cols += [np.log10(np.maximum(f[f"E_{i}"], 0.0) + LOG_EPSILON) for i in labels]
    cols += [np.asarray(f[name], dtype=np.float64) / 100.0 for name in _shape_names(f, labels)]
    return np.column_stack(cols)


def fpd_features(sample: ShowerSample) -> np.ndarray:
    """The features of FPD and KPD (n, 2 + 5K): :func:`high_level_inputs` and E_dep / E_inc."""
    return np.column_stack([high_level_inputs(sample), sample.features["response"]])


def histogram_features(sample: ShowerSample) -> dict[str, np.ndarray]:
    """The histograms of evaluate_plotting_helper, by hepgen's feature names: ``response`` (E_dep / E_inc),
    ``E_k``, ``centroid_x_k``, ``centroid_y_k``, ``width_x_k``, ``width_y_k``."""
    f, labels = sample.features, sample.labels
    names = ["response", *[f"E_{i}" for i in labels], *_shape_names(f, labels)]
    return {n: np.asarray(f[n], dtype=np.float64) for n in names}


# -- separation power ---------------------------------------------------------------------------------
def _edges(name: str, ref: np.ndarray) -> np.ndarray:
    """The bins of a feature (module doc): 39 logarithmic for a layer energy, 100 equal ones otherwise."""
    positive = ref[ref > 0]
    if name.startswith("E_") and len(positive) and positive.max() > np.quantile(positive, 0.001):
        return np.logspace(np.log10(np.quantile(positive, 0.001)), np.log10(positive.max()), 40)
    lo, hi = float(ref.min()), float(ref.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, 101)


def _separation(a: np.ndarray, b: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """(F,) separation powers of the columns of ``a`` (n, F) and ``b`` (m, F); NaN where a histogram is empty."""
    out = np.full(len(edges), np.nan)
    for j, e in enumerate(edges):
        ha, hb = np.histogram(a[:, j], e)[0], np.histogram(b[:, j], e)[0]
        if ha.sum() > 0 and hb.sum() > 0:
            out[j] = separation_power(ha, hb)
    return out


def separation_powers(reference: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray], *,
                      n_bootstrap: int = 50, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{feature: {"value", "error", "bins"}}``: the separation power of each feature's histograms of
    ``reference`` and ``other`` ({name: (n,)} each, e.g. :func:`histogram_features`) on the reference's bins
    (module doc), its error the spread over ``n_bootstrap`` replicas of both samples (same bins)."""
    names = list(reference)
    missing = [n for n in names if n not in other]
    if missing:
        raise DataError(f"separation power: the other sample has no feature {missing[0]!r}")
    a = np.column_stack([np.asarray(reference[n], dtype=np.float64) for n in names])
    b = np.column_stack([np.asarray(other[n], dtype=np.float64) for n in names])
    edges = [_edges(n, a[:, j]) for j, n in enumerate(names)]
    with np.errstate(invalid="ignore"):
        value, spread = bootstrap(lambda x, y: _separation(x, y, edges), a, b, n=n_bootstrap, seed=seed)
    return {n: {"value": float(value[j]), "error": float(spread[j]), "bins": len(edges[j]) - 1,
                "range": [float(edges[j][0]), float(edges[j][-1])]} for j, n in enumerate(names)}


def _cell_counts(cells: np.ndarray, edges: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(n, bins) per shower: how many of its cells fall in each bin of ``edges`` (np.histogram's bins)."""
    bins = len(edges) - 1
    out = np.zeros((len(cells), bins), dtype=np.int64)
    for start in range(0, len(cells), chunk):
        part = cells[start:start + chunk]
        idx = np.searchsorted(edges, part, side="right") - 1
        idx[part == edges[-1]] = bins - 1  # the last bin is closed, as np.histogram's
        ok = (idx >= 0) & (idx < bins)
        flat = (np.arange(len(part))[:, None] * bins + idx)[ok]
        out[start:start + chunk] = np.bincount(flat, minlength=len(part) * bins).reshape(len(part), bins)
    return out


def cell_separation_power(reference: np.ndarray, other: np.ndarray, *, n_bootstrap: int = 50,
                          seed: int = 0) -> dict[str, Any]:
    """``{"value", "error", "bins", "range"}``: the separation power of the cell-energy distributions (every
    cell of every shower, evaluate_plotting_helper's voxel histogram) of ``reference`` and ``other`` (n, voxels)
    [MeV], on 49 logarithmic bins from the reference's 0.1 % quantile of positive cells to its largest; the
    error is the spread over ``n_bootstrap`` replicas of the showers (both samples)."""
    positive = reference[reference > 0]
    if not len(positive) or not positive.max() > np.quantile(positive, 0.001):
        return {"value": float("nan"), "error": float("nan"), "bins": 0, "range": None}
    edges = np.logspace(np.log10(np.quantile(positive, 0.001)), np.log10(positive.max()), 50)
    a, b = _cell_counts(reference, edges), _cell_counts(other, edges)

    def power(x: np.ndarray, y: np.ndarray) -> float:
        hx, hy = x.sum(axis=0), y.sum(axis=0)
        return separation_power(hx, hy) if hx.sum() > 0 and hy.sum() > 0 else float("nan")

    value, spread = bootstrap(power, a, b, n=n_bootstrap, seed=seed)
    return {"value": float(value), "error": float(spread), "bins": len(edges) - 1,
            "range": [float(edges[0]), float(edges[-1])]}


# -- the whole protocol -------------------------------------------------------------------------------
def calochallenge_metrics(reference: ShowerSample, candidate: ShowerSample, floor: ShowerSample | None = None, *,
                          epochs: int | None = None, seed: int = 0, n_bootstrap: int = 50,
                          max_per_class: int | None = None, device: str = "auto", classifier: bool = True,
                          fpd_options: Mapping[str, Any] | None = None,
                          kpd_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CaloChallenge protocol (module doc) of ``candidate`` against ``reference``, and of ``floor`` against
    ``reference`` the same way when given.

    Returns ``{"protocol", "classifier", "fpd", "kpd", "separation_power", "notes"}``: ``classifier`` has
    ``candidate_high``, ``candidate_low`` (and ``floor_high``, ``floor_low``), each :func:`classifier_auc`'s
    result; ``fpd``/``kpd`` have ``candidate`` (and ``floor``) ``{"value", "error"}`` ×10³;
    ``separation_power`` has ``candidate`` (and ``floor``) :func:`separation_powers`. ``epochs`` overrides the
    classifier's 50; ``classifier=False`` skips the networks; ``fpd_options``/``kpd_options`` override jetnet's
    batch sizes (``min_samples``, ``max_samples``, ``num_batches``, ``num_points``; ``batch_size``,
    ``num_batches``): no longer the challenge's numbers, but quicker on small samples.
    """
    others = [("candidate", candidate)] + ([("floor", floor)] if floor is not None else [])
    k = reference.layers
    for label, other in others:
        if other.cells.shape[1] != reference.cells.shape[1] or other.layers != k:
            raise DataError(f"the {label} showers have {other.cells.shape[1]} cells in {other.layers} layers but the "
                            f"reference has {reference.cells.shape[1]} in {k}")
    result: dict[str, Any] = {"protocol": "calochallenge", "classifier": {}, "fpd": {}, "kpd": {},
                              "separation_power": {}, "notes": []}
    ref_fpd, ref_hist = fpd_features(reference), histogram_features(reference)
    for i, (label, other) in enumerate(others):
        x = fpd_features(other)
        value, error = fpd(ref_fpd, x, protocol="jetnet", **(fpd_options or {}))
        result["fpd"][label] = {"value": 1e3 * value, "error": 1e3 * error}
        value, error = kpd(ref_fpd, x, protocol="jetnet", **(kpd_options or {}))
        result["kpd"][label] = {"value": 1e3 * value, "error": 1e3 * error}
        result["separation_power"][label] = separation_powers(ref_hist, histogram_features(other),
                                                              n_bootstrap=n_bootstrap, seed=seed + i)
        result["separation_power"][label]["cells"] = cell_separation_power(reference.cells, other.cells,
                                                                           n_bootstrap=n_bootstrap, seed=seed + i)
        if classifier:
            for kind, inputs in (("high", high_level_inputs), ("low", low_level_inputs)):
                result["classifier"][f"{label}_{kind}"] = classifier_auc(
                    inputs(reference), inputs(other), protocol="calochallenge", epochs=epochs, seed=seed,
                    max_per_class=max_per_class, device=device, n_bootstrap=max(n_bootstrap, 2))
    smallest = min(len(reference), *(len(o) for _, o in others))
    if fpd_options or kpd_options:
        result["notes"].append(f"FPD/KPD batches set by the caller ({dict(fpd_options or {})}, "
                               f"{dict(kpd_options or {})}), not jetnet's defaults.")
    elif smallest < 20_000:
        result["notes"].append(f"FPD and KPD follow jetnet: batches of 20,000-50,000 (FPD) and 5,000 (KPD) showers "
                               f"drawn with replacement from samples of as few as {smallest}.")
    return result
