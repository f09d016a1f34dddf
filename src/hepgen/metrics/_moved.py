"""Names that left :mod:`hepgen.metrics` for the evaluation layer (:mod:`hepgen.evaluate`): they train a
classifier, and metrics are pure functions of arrays. Asking for one by its old name raises an
AttributeError that says where it went (forwarding it would be an import from metrics up into the layer
that imports metrics: a circle)."""

from __future__ import annotations

#: old module -> {name: its new home}
MOVED: dict[str, dict[str, str]] = {
    "hepgen.metrics": {"c2st_auc": "hepgen.evaluate", "c2st_scores": "hepgen.evaluate"},
    "hepgen.metrics.two_sample": {"c2st_auc": "hepgen.evaluate", "c2st_scores": "hepgen.evaluate"},
    "hepgen.metrics.shower_observables": {"classifier_auc": "hepgen.evaluate.calochallenge"},
}


def moved(module: str, name: str) -> AttributeError:
    """The AttributeError for ``module.name``: where the name went, if it moved."""
    home = MOVED.get(module, {}).get(name)
    if home is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return AttributeError(f"{module}.{name} moved to {home}.{name} (the evaluation layer: it trains a classifier); "
                          f"use `from {home} import {name}`")
