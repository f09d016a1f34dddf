"""The fidelity–diversity curve of a GAN's truncation trick: how sample quality and coverage move with ψ.

For each ψ (None: no truncation) the model draws as many events as the reference has (with the reference's
own context rows, so a class-conditional model sees the same class and energy mix) under one seed, and
both samples are mapped to physics features:

    images   :func:`hepgen.report.image_features.image_summary_features` per channel (total, max, occupancy,
             centroid row/column, width): the high-level features of a calorimeter layer or a jet image
    tabular  the features themselves

and judged by

    fpd                  Fréchet distance of the features, extrapolated to N → ∞ (:func:`hepgen.metrics.fpd`)
    auc                  a boosted-tree classifier two-sample test on the features (0.5: indistinguishable;
                         :func:`hepgen.evaluate.two_sample.c2st_auc`), the CaloChallenge's high-level AUC
    precision, density   fidelity: how many generated events fall inside the real sample's k-NN balls
    recall, coverage     diversity: how much of the real sample the generated one reaches
                         (:func:`hepgen.metrics.precision_recall_coverage`, features standardised by the real ones)

Truncating harder (ψ → 0, for BigGAN's threshold and a style-based GAN's w-lerp alike) usually raises
precision and density and lowers recall and coverage; FPD and AUC say where the trade is worth it.

:func:`truncation_report` writes the curve as a report folder (through :class:`hepgen.report.folder.ReportFolder`):
a figure of precision, density, recall and coverage against ψ beside FPD against coverage, a table of every row,
and metrics.json (``"curve"``: the rows, ``"inputs"``: what was read). The curve lives here, beside the
figures, as ``compare``'s metrics do: it judges samples with the evaluation layer's classifier test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepgen.errors import ConfigError, DataError
from hepgen.nn.rng import seeded
from hepgen.report.folder import ReportFolder
from hepgen.report.html import Page, Table
from hepgen.report.image_features import image_summary_features
from hepgen.report.plots import STYLE, series_colors

#: the ψ a curve visits unless told (None: no truncation)
DEFAULT_TRUNCATIONS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, None)


def physics_features(events: np.ndarray) -> np.ndarray:
    """The features a curve compares: image summary features for images (n, H, W) / (n, C, H, W), the events
    themselves for tabular (n, d)."""
    events = np.asarray(events, dtype=np.float64)
    if events.ndim == 2:
        return events
    if events.ndim in (3, 4):
        return image_summary_features(events)
    raise DataError(f"the truncation curve compares tabular (n, d) or image (n, [C,] H, W) events, got shape "
                    f"{events.shape}")


def truncation_curve(model: Any, reference: np.ndarray, context: np.ndarray | None = None,
                     truncations: Sequence[float | None] = DEFAULT_TRUNCATIONS, *, k: int = 5, seed: int = 0,
                     features: Callable[[np.ndarray], np.ndarray] = physics_features,
                     classifier_auc: bool = True, batch_size: int = 4096) -> list[dict[str, Any]]:
    """One row per ψ of ``truncations``: ``{"truncation": ψ, "fpd", "fpd_error", "auc", "precision", "recall",
    "density", "coverage"}`` of the model's samples against ``reference`` (n, *event_shape) in original units.

    ``context``: (n, c) rows (one sample per reference event) or one row (c,) for every event; required for a
    conditional model. Every ψ draws under the same ``seed`` (the caller's RNG is left as it was).
    ``classifier_auc=False`` skips the boosted-tree AUC (the slow part). The model's ``sample`` must take
    ``truncation=`` (ConfigError otherwise).
    """
    from hepgen.evaluate.two_sample import c2st_auc
    from hepgen.metrics import fpd, precision_recall_coverage

    if "truncation" not in inspect.signature(model.sample).parameters:
        raise ConfigError(f"{getattr(model, 'cli_name', type(model).__name__)} samples without a truncation trick: "
                          "it has no fidelity-diversity curve")
    if not len(truncations):
        raise ConfigError("the truncation curve needs at least one truncation value")
    reference = np.asarray(reference, dtype=np.float32)
    n = len(reference)
    if n <= max(int(k), 3):
        raise DataError(f"the truncation curve needs more than {max(int(k), 3)} reference events, got {n}")
    ctx = None
    if context is not None:
        ctx = np.asarray(context, dtype=np.float32)
        ctx = ctx.reshape(1, -1) if ctx.ndim == 1 else ctx
        if len(ctx) not in (1, n):
            raise DataError(f"the context has {len(ctx)} rows for {n} reference events; give one row or one per "
                            "event")
    real = features(reference)
    rows = []
    for psi in truncations:
        with seeded(seed, getattr(model, "device", None)), torch.no_grad():
            parts = []
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                c = None if ctx is None else (ctx if len(ctx) == 1 else ctx[start:stop])
                drawn = model.sample(stop - start, context=c, truncation=psi) if c is not None else \
                    model.sample(stop - start, truncation=psi)
                parts.append(drawn.detach().cpu().numpy())
        fake = features(np.concatenate(parts))
        if not np.isfinite(fake).all():
            raise DataError(f"truncation {psi}: the model's samples hold NaN or inf")
        distance, error = fpd(real, fake)
        row: dict[str, Any] = {"truncation": psi, "fpd": distance, "fpd_error": error}
        row["auc"] = c2st_auc(real, fake, seed=seed) if classifier_auc else None
        row.update(precision_recall_coverage(real, fake, k=k))
        rows.append(row)
    return rows


COLUMNS = ("precision", "density", "recall", "coverage")


def _label(psi: float | None) -> str:
    return "off" if psi is None else f"{psi:g}"


def plot_curve(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The figure: the four k-NN numbers per ψ (left, "off" at the right end) and FPD against coverage (right)."""
    import matplotlib.pyplot as plt

    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
        xs = np.arange(len(rows))
        for name, color in zip(COLUMNS, series_colors(len(COLUMNS))):
            left.plot(xs, [r[name] for r in rows], "o-", color=color, label=name)
        left.set_xticks(xs, [_label(r["truncation"]) for r in rows])
        left.set_xlabel("truncation ψ")
        left.set_ylabel("fraction")
        left.legend(fontsize="small")
        cov = [r["coverage"] for r in rows]
        fpd = [r["fpd"] for r in rows]
        right.plot(cov, fpd, "o-", color="k")
        for r in rows:
            right.annotate(f"ψ={_label(r['truncation'])}", (r["coverage"], r["fpd"]), fontsize="small",
                           xytext=(4, 4), textcoords="offset points")
        right.xaxis.set_major_locator(plt.MaxNLocator(4))
        right.yaxis.set_major_locator(plt.MaxNLocator(5))
        right.set_xlabel("coverage (diversity)")
        right.set_ylabel("FPD (lower: closer)")
        fig.tight_layout()
    return fig


def truncation_report(rows: Sequence[Mapping[str, Any]], report_dir: str | Path, *, title: str,
                      meta: Sequence[str] = (), inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the curve's report folder to ``report_dir``; returns what metrics.json holds."""
    metrics = {"curve": [dict(r) for r in rows], "inputs": dict(inputs or {})}
    with ReportFolder(report_dir) as report:
        report.save_figure(plot_curve(rows), "truncation.png", "precision, density, recall and coverage against the "
                           "truncation ψ; FPD against coverage (each point one ψ)", small=False)
        header = ["ψ", "FPD", "± FPD", "AUC", *COLUMNS]
        table = Table("the fidelity–diversity curve", header,
                      [[_label(r["truncation"]), r["fpd"], r["fpd_error"], r["auc"], *[r[c] for c in COLUMNS]]
                       for r in rows])
        page = Page(title=title, meta=list(meta), tables=[table])
        return report.finish(metrics, page)


__all__ = ["DEFAULT_TRUNCATIONS", "physics_features", "plot_curve", "truncation_curve", "truncation_report"]
