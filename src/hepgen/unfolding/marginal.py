"""Marginal-likelihood unfolding (neural empirical Bayes: Vandegar, Kagan, Wehenkel, Louppe, AISTATS 2021):
a truth flow p_theta(x) whose parameters maximise the likelihood of the observed data,

    log p(y | pass) = log int p_phi(y | x) eps(x) p_theta(x) dx  -  log Z(theta),   Z(theta) = E_{p_theta}[eps(x)],

with a learned detector model p_phi(y | x) (a conditional NSF on the simulated pairs, context = truth)
and eps(x) = P(pass_reco | x) (efficiency and acceptance folded in; a classifier on the simulated truth).

* The integral is estimated by importance sampling with K proposals per observed event from the flow
  posterior q(x | y) of :mod:`hepgen.unfolding.posterior` (sampling from p_theta itself would almost never
  land inside a 2 % eta resolution):
  log p(y) ~ logsumexp_k [log p_phi(y | x_k) + log eps(x_k) - log q(x_k | y) + log p_theta(x_k)] - log K.
  The proposals and every term but log p_theta are fixed before training, so the events the engine
  batches are the K (x_k, c_k) of each observed event; the gradient reaches theta through
  ``log_prob(x, grad=True)`` of the truth flow.
* log Z(theta) is estimated per batch from samples of p_theta with the score-function gradient
  sum_m eps_m grad log p_theta(x_m) / sum_m eps_m (eps is a tree classifier, not differentiable, so
  ``rsample``'s path-wise gradient through eps is not available; a differentiable efficiency model would
  allow it).
* Fakes: each observed event is weighted by 1 - P(fake | y). Integer columns are dequantised for all
  flows and floored on output. p_theta starts from the prior (a fit to the simulated truth): where
  eps(x) ~ 0 the data leave it there. Output: ``samples`` (default: as many as the simulated truth) events
  drawn from p_theta, weight 1.
* Bands: bootstrap replicas continue the training from the fitted theta on Poisson-weighted data for a
  third of ``unfold_epochs``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.models import Model, Player
from hepgen.unfolding.inputs import UnfoldingInputs
from hepgen.unfolding.posterior import (
    Coder,
    efficiency_model,
    fake_probability,
    preprocessing,
    train_posterior,
)


class MarginalObjective(Model):
    """The engine's view of the marginal likelihood: events are the K proposals of one observed event,
    flattened as (K * (d + 1),) = (x_1 .. x_K, c_1 .. c_K); the one player is the truth flow.

    Not in the registry: its events are built by :func:`unfold_marginal` (``hepgen unfold marginal``),
    not read from a user's file."""

    cli_name = "marginal-objective"

    def __init__(self, truth_flow: Any, features: int, proposals: int, efficiency: Any = None,
                 z_samples: int = 256):
        super().__init__((int(proposals) * (int(features) + 1),), 0, "none")
        self.truth_flow = truth_flow
        self.features, self.proposals, self.z_samples = int(features), int(proposals), int(z_samples)
        self.efficiency = efficiency

    def players(self) -> list[Player]:
        return [Player("theta", list(self.truth_flow.parameters()))]

    def reset_parameters(self) -> None:
        """Keep the truth flow as fitted to the prior: the marginal likelihood starts from it."""

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        z = batch["x"]
        b, K, d = z.shape[0], self.proposals, self.features
        x = z[:, :K * d].reshape(b * K, d)
        c = z[:, K * d:]
        log_pt = self.truth_flow.log_prob(x, grad=True).reshape(b, K)
        log_py = torch.logsumexp(c + log_pt, dim=1) - math.log(K)
        with torch.no_grad():
            xs = self.truth_flow.sample(self.z_samples)
            eps = torch.as_tensor(self.efficiency(xs.cpu().numpy().astype(np.float64)), dtype=z.dtype,
                                  device=z.device).clamp_min(1e-6)
        log_ps = self.truth_flow.log_prob(xs, grad=True)
        log_z_surrogate = (eps * log_ps).sum() / eps.sum()
        loss = -log_py + log_z_surrogate
        return {"loss": loss, "log_py": log_py.detach()}


def unfold_marginal(inputs: UnfoldingInputs, *, seed: int = 0, quiet: bool = True, bootstrap: int = 3,
                    epochs: int = 30, unfold_epochs: int = 30, proposals: int = 16, samples: int | None = None,
                    transforms: int = 4, hidden: Any = (64, 64), batch_size: int = 256, lr: float = 1e-3,
                    device: str = "cpu") -> tuple[np.ndarray, np.ndarray, list, dict[str, Any]]:
    """(events, weights, bootstrap replicas, extra) of the marginal-likelihood unfolding (module doc)."""
    from hepgen.errors import ConfigError
    from hepgen.flows import NSF

    if int(proposals) != proposals or proposals < 1:
        raise ConfigError(f"marginal unfolding needs proposals >= 1, got {proposals!r}")
    rng = np.random.default_rng(seed)
    both = inputs.pass_truth & inputs.pass_reco
    real = inputs.pass_truth
    kw = {"epochs": epochs, "transforms": transforms, "hidden": hidden, "batch_size": batch_size, "lr": lr,
          "device": device, "quiet": quiet}
    tcoder = Coder(inputs.truth[both], inputs.reco[both])       # truth side: dequantised x, log context of y
    rcoder = Coder(inputs.reco[both], inputs.truth[both])       # reco side: dequantised y, log context of x
    posterior = train_posterior(inputs.truth[both], inputs.reco[both], inputs.sim_weights[both], tcoder,
                                seed=seed, **kw)
    # the detector model p_phi(y | x): the truth (dequantised, log) as context
    xe = tcoder.encode(inputs.truth[both], rng)
    detector = train_posterior(inputs.reco[both], xe, inputs.sim_weights[both], rcoder, seed=seed + 1, **kw)
    eps = efficiency_model(inputs, seed)
    eps_safe = lambda x: np.clip(eps(x), 1e-6, 1.0)
    torch.manual_seed(seed)
    x_prior = tcoder.encode(inputs.truth[real], rng)
    truth_flow = NSF(inputs.features, transforms=int(transforms), hidden=tuple(hidden), preprocess=preprocessing(x_prior))
    truth_flow.fit(x_prior.astype(np.float32), weights=inputs.sim_weights[real].astype(np.float32), epochs=int(epochs),
                   batch_size=int(batch_size), lr=float(lr), seed=seed, device=device, quiet=quiet)
    # proposals x_k ~ q(x | y) and the fixed terms c_k per observed event
    m, K, d = len(inputs.data), int(proposals), inputs.features
    ctx = tcoder.context(inputs.data).astype(np.float32)
    rows = np.repeat(ctx, K, axis=0)
    with torch.no_grad():
        xk, log_q = posterior.sample_and_log_prob(None, context=rows)
    xk = xk.cpu().numpy().astype(np.float64)
    y_deq = rcoder.encode(inputs.data, rng)
    det_ctx = rcoder.context(xk).astype(np.float32)
    log_det = detector.log_prob(np.repeat(y_deq, K, axis=0).astype(np.float32), context=det_ctx).cpu().numpy()
    c = (log_det + np.log(eps_safe(xk)) - log_q.cpu().numpy()).reshape(m, K)
    c = np.nan_to_num(c, nan=-1e4, neginf=-1e4, posinf=-1e4)
    events = np.concatenate([xk.reshape(m, K * d), c], axis=1).astype(np.float32)
    w = (inputs.data_weights * (1.0 - fake_probability(inputs, inputs.data, seed))).astype(np.float32)
    objective = MarginalObjective(truth_flow, d, K, eps_safe, z_samples=max(64, int(batch_size)))
    objective.fit(events, weights=w, epochs=int(unfold_epochs), batch_size=int(batch_size), lr=float(lr), seed=seed,
                  device=device, quiet=quiet)
    n_out = int(samples) if samples else int(real.sum())

    def draw(flow: Any, s: int) -> np.ndarray:
        torch.manual_seed(s)
        with torch.no_grad():
            return tcoder.decode(flow.sample(n_out).cpu().numpy().astype(np.float64))

    out = draw(truth_flow, seed + 3)
    reps = []
    for b in range(int(bootstrap)):
        rep = copy.deepcopy(objective)
        rep.fit(events, weights=w * rng.poisson(1.0, m).astype(np.float32), epochs=max(1, int(unfold_epochs) // 3),
                batch_size=int(batch_size), lr=float(lr), seed=seed + b + 1, device=device, quiet=quiet)
        reps.append((draw(rep.truth_flow, seed + 100 + b), np.ones(n_out)))
    history = objective.history_
    extra = {"log_py": np.array([h.get("train_log_py", np.nan) for h in history], dtype=float)} if history else {}
    return out, np.ones(n_out), reps, extra
