"""Names that left :mod:`hepgen.metrics` for the evaluation layer (:mod:`hepgen.evaluate`): they train a
classifier, and metrics are pure functions of arrays. Their old spellings keep working, with a
DeprecationWarning, through the modules' ``__getattr__``; this is the one place metrics reaches upward."""

from __future__ import annotations

import warnings
from typing import Any

#: old module -> {name: its new home}
MOVED: dict[str, dict[str, str]] = {
    "hepgen.metrics": {"c2st_auc": "hepgen.evaluate.two_sample", "c2st_scores": "hepgen.evaluate.two_sample"},
    "hepgen.metrics.two_sample": {"c2st_auc": "hepgen.evaluate.two_sample",
                                  "c2st_scores": "hepgen.evaluate.two_sample"},
    "hepgen.metrics.showers": {"classifier_auc": "hepgen.evaluate.calochallenge"},
}


def moved(module: str, name: str) -> Any:
    """``module.name`` from its new home, with a DeprecationWarning; AttributeError for any other name."""
    home = MOVED.get(module, {}).get(name)
    if home is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved to {home}.{name} (the evaluation layer: it trains a classifier); the old "
                  "name will be removed", DeprecationWarning, stacklevel=3)
    from hepgen import evaluate  # the deprecated spellings' one upward import (tests/test_layering.py ALLOWED)

    return getattr(evaluate, name)
