"""CaloFlow: two conditional flows, the layer energies given E_inc and the normalised cells given both.

After Krause and Shih (CaloFlow, arXiv:2106.05285), on the calo generator's layout:

    y_c  = max(x_c + offset, floor)                 cells shifted above the noise (MeV), invertible where
                                                    x_c > floor − offset (the rest: cells 5σ below zero)
    E_k  = Σ_{c ∈ k} x_c,  a_k = standardised asinh(E_k / (1000 E) / 10⁻³)  flow 1: p(a | ln E)  (K-D NSF)
    S_k  = Σ_{c ∈ k} y_c = E_k + N_k offset (N_k cells)
    n_c  = y_c / S_k,      l_c = standardised logit(α + (1 − 2α) n_c)     flow 2: p(l | a, ln E) (504-D NSF,
                                                                                   spline couplings)
    log p(a, l | E) = log p_1(a | E) + log p_2(l | a, E)          (the training loss; ``score`` = −it)

Sampling inverts the chain: a ~ p_1, l ~ p_2, n = (σ(l) − α)/(1 − 2α) clipped at 0 and renormalised per
layer (the sum constraint the flow does not know), y = n S_k with S_k = E_k + N_k offset, x = y − offset,
so the layer energies are exactly flow 1's, clipped to the range of a in the training showers (a is
logarithmic in E_k: an over-long upper tail of flow 1 becomes a heavy tail of the response — after a
short fit the π+ mean response was 8–16 % high from the top 1 % of showers alone, the median right).
The shift by ``offset`` (5 MeV, five times the simulator's default noise) replaces CaloFlow's uniform noise on empty cells:
every cell keeps its noise, so generated showers carry the simulator's noise, negative cells included.
The standardisation statistics of a and l are fitted on the training showers at fit start.

Flow 1 is made of spline couplings by default (``energy_flow="coupling"``), CaloFlow's autoregressive
splines on request (``"autoregressive"``). Both directions of a coupling take one pass, while an
autoregressive layer samples in K sequential passes. At batch 1 the spline's small-tensor overhead
dominates, so flow 1 cost 12 passes (4.3 ms) of the 7.6 ms per shower. Measured on π+ showers (30k
training, 10k validation, 20 epochs, flow 1 alone, one thread):

    flow 1                       validation NLL   batch-1 inverse
    4 autoregressive (CaloFlow)  1.830            4.5 ms
    4 couplings                  1.834            1.5 ms
    6 couplings (the default)    1.824            2.5 ms
    8 couplings                  1.823            2.9 ms

The per-bin response and resolution of the four agreed within their statistical errors.
With one layer, both kinds reduce to one conditional spline, and flow 1 is autoregressive.
Context: the first column is the incident energy in GeV (``--context energy``); further columns are
conditions of both flows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.calo.gan import energy_condition
from hepgen.calo.monitor import ShowerMonitors
from hepgen.calo.shower_layout import IncidentEnergyChecks, layer_shapes, shower_geometry, shower_model_from_data
from hepgen.errors import ConfigError
from hepgen.flows.distributions import StandardNormal
from hepgen.flows.transforms.autoregressive import spline_autoregressive
from hepgen.flows.transforms.base import Compose
from hepgen.flows.transforms.coupling import spline_coupling
from hepgen.models import Model, register


def _mask(features: int, i: int) -> Tensor:
    """Coupling masks that mix every cell with every other: alternate halves and parities in turn."""
    idx = torch.arange(features)
    kind = i % 4
    if kind == 0:
        return idx % 2 == 0
    if kind == 1:
        return idx % 2 == 1
    if kind == 2:
        return idx < features // 2
    return idx >= features // 2


@register
class CaloFlow(ShowerMonitors, IncidentEnergyChecks, Model):
    """The two-flow shower model (module doc).

    Args:
        shapes: {layer: (rows, cols)} (default: the calo generator's layers).
        context: context columns, the incident energy in GeV first.
        energy_flow: flow 1's layers, ``"coupling"`` (one pass each way) or ``"autoregressive"`` (CaloFlow's
            MAF: K sequential passes to sample).
        energy_transforms, energy_hidden: flow 1's spline layers and their conditioners' (MADE) sizes.
        cell_transforms, cell_hidden: flow 2's spline coupling layers and conditioner sizes.
        bins, tail_bound: spline bins and bound (standardised units).
        offset: the shift of every cell above the noise (MeV); floor: its lower clip (MeV).
        alpha: the logit's margin.
        geometry: a CaloChallenge binning XML (``binning.xml[:particle]``, or the geometry a run recorded): the
            layers are its (angular, radial) bins ``layer_<id>`` and ``hepgen sample`` writes the CaloChallenge
            layout (incident_energies, showers in MeV); the run records its content. None: the simulator's layers.

    ``fit(..., monitor="fpd" or "auc", monitor_every=K)`` keeps the epoch whose showers are closest to the
    validation showers by the high-level FPD or classifier AUC (:mod:`hepgen.calo.monitor`).
    Incident energies must be positive GeV values in training, scoring and sampling; ``sample``/``rsample``
    refuse energies far outside the training range (``energy_range_``) unless called with ``extrapolate=True``.
    """

    cli_name = "calo-flow"

    def __init__(self, shapes: Mapping[str, Sequence[int]] | None = None, context: int = 1,
                 energy_flow: str = "coupling", energy_transforms: int = 6, energy_hidden: Sequence[int] = (64, 64), cell_transforms: int = 6,
                 cell_hidden: Sequence[int] = (256,), bins: int = 8, tail_bound: float = 6.0, offset: float = 5.0,
                 floor: float = 1e-3, alpha: float = 1e-6, geometry: Mapping[str, Any] | str | None = None,
                 preprocess: Any = "none"):
        self.geometry, shapes = shower_geometry("calo-flow", geometry, shapes)
        self.shapes = layer_shapes("calo-flow", shapes, context, preprocess, "preprocesses showers itself (shift, normalise, logit)")
        super().__init__(self.shapes, int(context), "none")
        for name, v in (("energy_transforms", energy_transforms), ("cell_transforms", cell_transforms), ("bins", bins)):
            if int(v) < 1:
                raise ConfigError(f"calo-flow: {name} must be positive, got {v}")
        if energy_flow not in ("coupling", "autoregressive"):
            raise ConfigError(f"calo-flow: energy_flow must be 'coupling' or 'autoregressive', got {energy_flow!r}")
        if not float(offset) > float(floor) > 0 or not 0 < float(alpha) < 0.5:
            raise ConfigError("calo-flow needs offset > floor > 0 and 0 < alpha < 0.5")
        self.energy_flow = str(energy_flow)
        self.energy_transforms, self.cell_transforms = int(energy_transforms), int(cell_transforms)
        self.energy_hidden, self.cell_hidden = tuple(int(h) for h in energy_hidden), tuple(int(h) for h in cell_hidden)
        self.bins, self.tail_bound = int(bins), float(tail_bound)
        self.offset, self.floor, self.alpha = float(offset), float(floor), float(alpha)
        k = len(self.shapes)
        self.cells = [int(np.prod(s)) for s in self.shapes.values()]
        cells = sum(self.cells)
        cond = self.context
        if self.energy_flow == "coupling" and k > 1:
            self.flow1 = Compose([spline_coupling(_mask(k, i), self.energy_hidden, cond, self.bins, self.tail_bound)
                                  for i in range(self.energy_transforms)])
        else:
            orders = [list(range(k)) if i % 2 == 0 else list(range(k - 1, -1, -1)) for i in range(self.energy_transforms)]
            self.flow1 = Compose([spline_autoregressive(k, self.energy_hidden, cond, order, self.bins, self.tail_bound)
                                  for order in orders])
        self.flow2 = Compose([spline_coupling(_mask(cells, i), self.cell_hidden, cond + k, self.bins, self.tail_bound)
                              for i in range(self.cell_transforms)])
        self.base1, self.base2 = StandardNormal(k), StandardNormal(cells)
        for name, size in (("a_mean", k), ("a_std", k), ("l_mean", cells), ("l_std", cells)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))
        # the standardised layer energies' range in training: samples are clipped to it
        self.register_buffer("a_low", torch.full((k,), -float(tail_bound)))
        self.register_buffer("a_high", torch.full((k,), float(tail_bound)))
        self.reset_parameters()

    from_data = classmethod(shower_model_from_data)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for t in list(self.flow1.transforms) + list(self.flow2.transforms):
            t.reset_to_identity()

    # -- the preprocessing ----------------------------------------------------------------------
    def _conditions(self, c: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.context_preprocessor.inverse(c)
        energy = raw[:, 0]
        return energy, torch.cat([energy_condition(energy), c[:, 1:]], dim=1)

    def _raw_internal(self, x: Mapping[str, Tensor], energy: Tensor) -> tuple[Tensor, Tensor]:
        """(asinh(E_k / 1000 E / 1e-3) (batch, K), logit(normalised cells) (batch, cells)) before standardisation."""
        flat = [x[k].reshape(len(energy), -1) for k in self.shapes]
        a = torch.asinh(torch.stack([f.sum(1) for f in flat], 1) / (1000.0 * energy[:, None]) / 1e-3)
        ys = [(f + self.offset).clamp_min(self.floor) for f in flat]
        sums = torch.stack([y.sum(1) for y in ys], 1)
        n = torch.cat([y / s[:, None] for y, s in zip(ys, sums.T)], 1)
        p = self.alpha + (1 - 2 * self.alpha) * n
        return a, torch.log(p) - torch.log1p(-p)

    def _internal(self, x: Mapping[str, Tensor], energy: Tensor) -> tuple[Tensor, Tensor]:
        a, l = self._raw_internal(x, energy)
        return (a - self.a_mean) / self.a_std, (l - self.l_mean) / self.l_std

    def on_fit_start(self, events: Any) -> None:
        """Fit the standardisation of a and l on (up to 20,000 of) the training showers."""
        self._record_energy_range(events)
        m = min(len(events), 20_000)
        part = events.rows(0, m)  # the first showers, in memory or streamed from disk
        c = self.context_preprocessor(self._as_tensor(np.asarray(part["context"])))
        energy, _ = self._conditions(c)
        with torch.no_grad():
            a, l = self._raw_internal({k: self._as_tensor(np.asarray(part["x"][k])) for k in self.shapes}, energy)
            self.a_mean.copy_(a.mean(0))
            self.a_std.copy_(a.std(0).clamp_min(1e-3))
            self.a_low.copy_(((a - self.a_mean) / self.a_std).amin(0))
            self.a_high.copy_(((a - self.a_mean) / self.a_std).amax(0))
            self.l_mean.copy_(l.mean(0))
            self.l_std.copy_(l.std(0).clamp_min(1e-3))

    # -- densities ---------------------------------------------------------------------------------
    def _log_prob_internal(self, a: Tensor, l: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        z1, ladj1 = self.flow1(a, cond)
        z2, ladj2 = self.flow2(l, torch.cat([cond, a], 1))
        return self.base1.log_prob(z1) + ladj1, self.base2.log_prob(z2) + ladj2

    def training_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        energy, cond = self._conditions(batch["context"])
        a, l = self._internal(batch["x"], energy)
        lp1, lp2 = self._log_prob_internal(a, l, cond)
        return {"loss": -(lp1 + lp2), "nll_energies": -lp1, "nll_cells": -lp2}

    @torch.no_grad()
    def log_prob_internal(self, x: Mapping[str, Any], context: Any = None) -> Tensor:
        """log p_1(a | E) + log p_2(l | a, E) of showers in MeV, in the flows' coordinates (a, l): (batch,)."""
        x = self.to_internal(x)
        n = len(next(iter(x.values())))
        energy, cond = self._conditions(self.context_to_internal(context, n))
        self._check_energy(energy, extrapolate=True)  # physical; a density is defined at any energy
        lp1, lp2 = self._log_prob_internal(*self._internal(x, energy), cond)
        return lp1 + lp2

    def score_outputs(self, x: Mapping[str, Any], context: Any = None) -> dict[str, Tensor]:
        """``score`` = −(log p_1 + log p_2) in the flows' coordinates (not a density in MeV: the cells are
        normalised per layer first): (batch,)."""
        return {"score": -self.log_prob_internal(x, context)}

    def score(self, x: Mapping[str, Any], context: Any = None) -> Tensor:
        return self.score_outputs(x, context)["score"]

    # -- sampling ----------------------------------------------------------------------------------
    def rsample(self, n: int | None, context: Any = None, extrapolate: bool = False) -> dict[str, Tensor]:
        """Showers {layer: (n, rows, cols)} in MeV given the context (energy in GeV first), reparameterised;
        ``extrapolate``: allow energies far outside the training range."""
        if n is None:
            n = int(torch.as_tensor(context).reshape(-1, self.context).shape[0])
        n = int(n)
        energy, cond = self._conditions(self.context_to_internal(context, n))
        self._check_energy(energy, extrapolate)
        z1 = self.base1.rsample(n)
        a = self.flow1.invert(z1, cond)  # (without a graph: the splines skip their log-derivatives)
        a = torch.maximum(torch.minimum(a, self.a_high), self.a_low)  # no layer energy beyond the training range
        l = self.flow2.invert(self.base2.rsample(n), torch.cat([cond, a], 1))
        return self._from_internal(a, l, energy)

    def _from_internal(self, a: Tensor, l: Tensor, energy: Tensor) -> dict[str, Tensor]:
        """The inverse of :meth:`_internal`: showers {layer: (batch, rows, cols)} in MeV from the standardised
        (a, l), exact for showers whose cells all lie above floor − offset (module doc)."""
        n = len(energy)
        layer_energy = torch.sinh(a * self.a_std + self.a_mean) * 1e-3 * 1000.0 * energy[:, None]
        cells = torch.tensor(self.cells, dtype=a.dtype, device=a.device)
        sums = torch.maximum(layer_energy + cells * self.offset, cells * self.floor)
        p = torch.sigmoid(l * self.l_std + self.l_mean)
        normalised = ((p - self.alpha) / (1 - 2 * self.alpha)).clamp_min(0.0)
        out, start = {}, 0
        for k, (name, size) in enumerate(zip(self.shapes, self.cells)):
            part = normalised[:, start:start + size]
            part = part / part.sum(1, keepdim=True).clamp_min(1e-12)
            out[name] = (part * sums[:, k:k + 1] - self.offset).reshape(n, *self.shapes[name])
            start += size
        return out

    #: rows per pass of :meth:`sample`: 10,000 showers in blocks of 1024 took 0.17 ms each against 0.32-0.36 in
    #: one pass (one CPU thread; the blocks' activations stay in cache)
    sample_block = 1024

    @torch.inference_mode()
    def sample(self, n: int | None, context: Any = None, extrapolate: bool = False) -> dict[str, Tensor]:
        """n showers {layer: (n, rows, cols)} in MeV, drawn in blocks of :attr:`sample_block` rows, without a graph
        (inference tensors, as CaloGAN's: 1.7 of 7.6 ms per shower at batch 1 was no_grad's bookkeeping);
        ``extrapolate`` as in :meth:`rsample`."""
        if n is None:
            n = int(torch.as_tensor(context).reshape(-1, self.context).shape[0])
        n = int(n)
        c = context if isinstance(context, Tensor) else torch.as_tensor(np.asarray(context, dtype=np.float64))
        c = c.reshape(-1, self.context) if context is not None and c.numel() % self.context == 0 else None
        if n <= self.sample_block or c is None or len(c) not in (1, n):
            return self.rsample(n, context, extrapolate)  # (and its errors for a context that does not fit)
        c = c.expand(n, -1)
        parts = [self.rsample(len(block), block, extrapolate) for block in c.split(self.sample_block)]
        return {k: torch.cat([p[k] for p in parts]) for k in self.shapes}
