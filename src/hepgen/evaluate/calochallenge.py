"""The CaloChallenge 2022 evaluation of generated calorimeter showers: the classifier test.

A fully connected network (two hidden layers of 512, dropout 0.2; a hepgen
:class:`~hepgen.classifier.Classifier` trained by the engine with Adam, lr 2·10⁻⁴, batches of 1000, 30
epochs) separates reference (label 1) from candidate (label 0) showers on a seeded 60/20/20
train / validation / test split; the epoch with the lowest validation loss is kept and the AUC is measured
on the test part, with its Hanley–McNeil error. It is :func:`hepgen.evaluate.two_sample.held_out_scores`
with ``split`` and the network's settings. Its inputs, high-level features or normalised cells, come from
:func:`hepgen.metrics.shower_observables.classifier_inputs`. The floor of the AUC is that of the reference against an
independent sample of itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepgen.evaluate.two_sample import held_out_scores
from hepgen.metrics.classification import auc_standard_error

__all__ = ["classifier_auc"]


def classifier_auc(reference: np.ndarray, candidate: np.ndarray, *, hidden: Sequence[int] = (512, 512),
                   epochs: int = 30, batch_size: int = 1000, lr: float = 2e-4,
                   split: Sequence[float] = (0.6, 0.2, 0.2), dropout: float = 0.2, seed: int = 0,
                   max_per_class: int | None = None, device: str = "auto") -> dict[str, float]:
    """The CaloChallenge classifier test of ``candidate`` (m, d) against ``reference`` (n, d) (module doc).

    Returns ``{"auc", "auc_err", "val_loss", "best_epoch", "n_train", "n_test"}``: the test AUC and its
    Hanley–McNeil standard error, the kept epoch and its validation loss, the (balanced) training and the
    test event counts. ``max_per_class`` caps each sample by a seeded subsample first.
    """
    held = held_out_scores(reference, candidate, classifier="dnn", split=split, max_per_class=max_per_class,
                           seed=seed, settings={"hidden": tuple(hidden), "dropout": dropout, "epochs": epochs,
                                                "batch_size": batch_size, "lr": lr, "device": device})
    net = held.classifiers[0]
    auc = held.auc()
    return {"auc": auc, "auc_err": auc_standard_error(auc, len(held.real), len(held.generated)),
            "val_loss": net.val_loss_, "best_epoch": net.best_epoch_, "n_train": held.n_train[0],
            "n_test": len(held.real) + len(held.generated)}
