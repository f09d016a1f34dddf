"""Validation metrics that track the goal while a shower model trains: the engine's ``monitor`` picks the best
epoch by how the showers look, not by the loss.

``model.fit(..., monitor="fpd", monitor_every=5)`` (CLI: ``--option monitor=fpd --option monitor_every=5``)
on a ``calo-flow`` or ``calo-gan``: after every 5th epoch (and the last) the model generates
``monitor_samples`` showers (default 5000) at the incident energies (and further conditions) of as many
validation showers, on a fixed seed, and the engine logs and monitors (lower is better)

    fpd   1000 × the FPD of the CaloChallenge's high-level features with E_dep / E_inc
          (:func:`hepgen.evaluate.calochallenge.fpd_features`), hepgen's batch protocol (batch sizes fitted
          to the samples: :func:`hepgen.metrics.two_sample.fpd`): about a second for 5000 showers;
    auc   the AUC of hepgen's light classifier test (:func:`hepgen.evaluate.calochallenge.classifier_auc`,
          protocol ``hepgen``, 2 × 512 units, 30 epochs) on the high-level inputs: the goal itself, at about
          10 s of CPU per evaluation for 5000 showers (hence ``monitor_every``). Values below ½ are noise and
          count as ½.

The column is ``val_fpd`` / ``val_auc`` in metrics.csv; the kept weights are those of the best monitored
epoch, and ``--resume`` continues with the same choice (the samples are drawn on a seed of their own,
so a resumed run measures what an uninterrupted one would). The validation showers' weights are not used.
The features are those ``hepgen compare`` computes for the model's layout: the simulator's square layers, or
the η/φ bins of the CaloChallenge geometry the model was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hepgen.calo.shower_layout import Showers, read_geometry
from hepgen.evaluate.calochallenge import ShowerSample, classifier_auc, fpd_features, high_level_inputs
from hepgen.metrics.shower_observables import shower_features
from hepgen.metrics.two_sample import fpd
from hepgen.nn.rng import seeded

__all__ = ["SHOWER_MONITORS", "ShowerMonitors", "shower_auc", "shower_fpd"]


@torch.no_grad()
def _samples(model: Any, val: Any, n: int, seed: int) -> tuple[ShowerSample, ShowerSample]:
    """(up to n validation showers, as many generated at their conditions) as protocol inputs."""
    n = min(int(n), len(val))
    rows = val.rows(0, n)
    context = np.asarray(rows["context"], dtype=np.float64).reshape(n, -1)
    with seeded(seed, model.device):  # the monitor's draws must not shift the training RNG stream
        fake = model.sample(n, context=torch.as_tensor(context, dtype=torch.float32))
    geometry = getattr(model, "geometry", None)
    geometry = read_geometry(geometry) if geometry is not None else None
    energy = context[:, 0]
    out = []
    for layers in ({k: np.asarray(rows["x"][k], dtype=np.float64) for k in model.shapes},
                   {k: fake[k].double().cpu().numpy() for k in model.shapes}):
        showers = Showers(layers, energy, geometry=geometry)
        features = shower_features(showers.list(), energy, **showers.feature_layout())
        out.append(ShowerSample(energy, np.concatenate([x.reshape(n, -1) for x in showers.list()], axis=1), features))
    return out[0], out[1]


def shower_fpd(model: Any, val: Any, n: int, seed: int = 0) -> float:
    """1000 × the high-level FPD of ``n`` generated showers against the validation showers (module doc)."""
    real, fake = _samples(model, val, n, seed)
    return 1e3 * fpd(fpd_features(real), fpd_features(fake), seed=seed)[0]


def shower_auc(model: Any, val: Any, n: int, seed: int = 0) -> float:
    """The high-level classifier AUC (hepgen's light test) of ``n`` generated showers against the validation
    showers, at least ½ (module doc)."""
    real, fake = _samples(model, val, n, seed)
    device = "cpu" if model.device.type == "cpu" else "auto"
    auc = classifier_auc(high_level_inputs(real), high_level_inputs(fake), seed=seed, device=device)["auc"]
    return max(float(auc), 0.5)


#: name -> f(model, validation events, n, seed): the shower models' own monitors (lower is better)
SHOWER_MONITORS: dict[str, Callable[..., float]] = {"fpd": shower_fpd, "auc": shower_auc}


class ShowerMonitors:
    """Mixin of the shower models: ``monitors()`` names :data:`SHOWER_MONITORS` for the engine's ``monitor``."""

    def monitors(self) -> dict[str, Callable[..., float]]:
        return dict(SHOWER_MONITORS)
