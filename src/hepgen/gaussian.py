"""The full-covariance Gaussian density: the baseline every flow must beat.

    log p(u) = -½ (u - μ)ᵀ Σ⁻¹ (u - μ) - ½ log det(2π Σ),   Σ = L Lᵀ,

with L lower triangular and a positive diagonal exp(ℓ) (the Cholesky parametrisation keeps Σ
positive definite for any parameter values). Trained by maximum likelihood on preprocessed u; the
weighted maximum-likelihood solution is the weighted mean and the weighted (biased) covariance.
:class:`~hepgen.density.DensityModel` adds the preprocessing Jacobian and gives ``log_prob``,
``score``, ``sample`` and the differentiable ``rsample`` / ``log_prob(x, grad=True)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal

from hepgen.data.preprocess import PreprocessSpec
from hepgen.density import DensityModel
from hepgen.errors import ConfigError
from hepgen.export import GraphModule
from hepgen.models import register


class _SampleGraph(GraphModule):
    """z (batch, D) standard normal -> (x = T⁻¹(μ + L z), log p(x)), original units.

    L and L⁻¹ are constants of the graph, computed once in torch when it is built (ONNX has neither
    ``diag_embed`` nor a triangular solve, and both are fixed after training).
    """

    def __init__(self, model: Gaussian):
        super().__init__(model)
        tril = model.scale_tril().detach()
        self.register_buffer("tril", tril, persistent=False)
        self.register_buffer("tril_inverse", torch.linalg.inv(tril), persistent=False)
        self.register_buffer("log_det", torch.log(torch.diagonal(tril)).sum(), persistent=False)

    def forward(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        m = self.model
        u = m.loc + eps @ self.tril.T
        x = m.preprocessor.inverse(u)
        return x, self._log_prob_u(u) + m.preprocessor.log_abs_det_jacobian(x)

    def _log_prob_u(self, u: Tensor) -> Tensor:
        """log N(u; μ, L Lᵀ) = −½ ‖L⁻¹(u − μ)‖² − Σ log L_ii − (D/2) log 2π."""
        w = (u - self.model.loc) @ self.tril_inverse.T
        return -0.5 * (w * w).sum(-1) - self.log_det - 0.5 * self.model.features * math.log(2 * math.pi)


class _LogProbGraph(_SampleGraph):
    """x (batch, D) -> log p(x) [, score = −log p(x)] in original units, with the constants of :class:`_SampleGraph`."""

    def __init__(self, model: Gaussian, with_score: bool):
        super().__init__(model)
        self.with_score = with_score

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:  # type: ignore[override]
        m = self.model
        lp = self._log_prob_u(m.preprocessor(x)) + m.preprocessor.log_abs_det_jacobian(x)
        return (lp, -lp) if self.with_score else (lp,)


@register
class Gaussian(DensityModel):
    """Full-covariance Gaussian density on ``features`` dimensions.

    Args:
        features: number of features per event.
        context: must be 0 (the Gaussian baseline is unconditional).
        preprocess: per-feature preprocessing (default ``standard``).
    """

    cli_name = "gaussian"

    def __init__(self, features: int, context: int = 0, preprocess: PreprocessSpec = "standard"):
        if context:
            raise ConfigError("the gaussian baseline is unconditional; use a conditional flow (nsf) for a context")
        super().__init__((features,), 0, preprocess)
        self.features = int(features)
        self.loc = nn.Parameter(torch.zeros(self.features))
        self.tril = nn.Parameter(torch.zeros(self.features, self.features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start from the standard normal: μ = 0, L = I."""
        with torch.no_grad():
            self.loc.zero_()
            self.tril.zero_()

    def scale_tril(self) -> Tensor:
        """L = strictly-lower(tril) + diag(exp(diag(tril))): (features, features)."""
        return torch.tril(self.tril, -1) + torch.diag_embed(torch.exp(torch.diagonal(self.tril)))

    def base(self) -> MultivariateNormal:
        """The Gaussian in preprocessed space."""
        return MultivariateNormal(self.loc, scale_tril=self.scale_tril(), validate_args=False)

    # -- the density in the preprocessed space (DensityModel derives log_prob, score, sample ...) ------
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log N(u; μ, L Lᵀ): u (batch, features) -> (batch,)."""
        return self.base().log_prob(u)

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(u = μ + L ε (n, features), log N(u; μ, L Lᵀ) (n,)), ε ~ N(0, I): reparameterised."""
        base = self.base()
        u = base.rsample((int(n),))
        return u, base.log_prob(u)

    # -- ONNX graphs (see DensityModel.export_graph): L and L⁻¹ folded in as constants ------------------
    def _sample_graph(self) -> nn.Module:
        return _SampleGraph(self)

    def _log_prob_graph(self, with_score: bool) -> nn.Module:
        return _LogProbGraph(self, with_score)

    def _affine(self) -> tuple[Tensor, Tensor]:
        if not self.preprocessor.is_affine():
            raise ConfigError("mean_ and covariance_ in the original units exist only for affine preprocessing "
                              "(standard, minmax, none); the model is Gaussian in the preprocessed space")
        x0 = torch.zeros(1, self.features, dtype=torch.float64, device=self.device)
        shift = self.preprocessor.inverse(x0)[0]
        scale = self.preprocessor.inverse(x0 + 1)[0] - shift
        return shift, scale

    @property
    def mean_(self) -> Tensor:
        """Mean in the original units: (features,)."""
        shift, scale = self._affine()
        return (shift + scale * self.loc.double()).detach()

    @property
    def covariance_(self) -> Tensor:
        """Covariance in the original units: (features, features)."""
        _, scale = self._affine()
        L = self.scale_tril().double()
        return (scale[:, None] * (L @ L.T) * scale[None, :]).detach()
