"""Evaluation metrics: pure functions on NumPy arrays (two-sample distances, histogram divergences, classifier
performance from given scores, sampling diagnostics). Every function takes optional per-event weights.
Judgements that train a model (the classifier two-sample tests) are in :mod:`hepgen.evaluate`."""

from hepgen.metrics.bootstrap import bootstrap
from hepgen.metrics.classification import (
    auc_standard_error,
    background_rejection,
    classifier_metrics,
    roc_auc,
    roc_curve,
    significance_improvement,
    split_by_label,
)
from hepgen.metrics.histograms import (
    chi2_from_histograms,
    chi2_histograms,
    common_edges,
    js_divergence,
    kl_divergence,
    kl_js_from_samples,
    kl_js_on_grid,
    separation_power,
    weighted_histogram,
)
from hepgen.metrics.manifold import knn_radii, precision_recall_coverage
from hepgen.metrics.sampling import (
    autocorrelation,
    effective_sample_size,
    effective_sample_size_from_log_weights,
    independence_metropolis,
    integrated_autocorrelation_time,
)
from hepgen.metrics.two_sample import (
    fpd,
    frechet_distance,
    kpd,
    mmd2_polynomial,
    wasserstein_1d,
    wasserstein_per_feature,
)

__all__ = [
    "auc_standard_error",
    "autocorrelation",
    "background_rejection",
    "bootstrap",
    "chi2_from_histograms",
    "chi2_histograms",
    "classifier_metrics",
    "common_edges",
    "effective_sample_size",
    "effective_sample_size_from_log_weights",
    "fpd",
    "frechet_distance",
    "independence_metropolis",
    "integrated_autocorrelation_time",
    "js_divergence",
    "kl_divergence",
    "kl_js_from_samples",
    "kl_js_on_grid",
    "knn_radii",
    "kpd",
    "mmd2_polynomial",
    "precision_recall_coverage",
    "roc_auc",
    "roc_curve",
    "separation_power",
    "significance_improvement",
    "split_by_label",
    "wasserstein_1d",
    "wasserstein_per_feature",
    "weighted_histogram",
]


def __getattr__(name: str):
    from hepgen.metrics._moved import moved

    raise moved(__name__, name)
