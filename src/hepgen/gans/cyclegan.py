"""CycleGAN: unpaired translation between two domains A and B (Zhu et al. 2017).

    G: A → B, F: B → A, critics D_A, D_B;
    ℓ_D = ℓ_crit(D_B(b), D_B(G(a))) + ℓ_crit(D_A(a), D_A(F(b)))
    ℓ_G = ℓ_gen(D_B(G(a))) + ℓ_gen(D_A(F(b))) + λ_cyc (|F(G(a)) − a|₁ + |G(F(b)) − b|₁)
          + λ_id λ_cyc (|G(b) − b|₁ + |F(a) − a|₁)                     (identity terms: same features only)

|·|₁ is the mean absolute difference over features in each domain's preprocessed (standardised)
units. Domain B is the engine's second event stream ``"b"``: ``fit(x, streams={"b": y})`` (or
``{"b": {"data": y, "weights": w}}``), or the ``domain_b`` data spec (with ``domain_b_weights``), which
the CLI sets with ``hepgen fit cyclegan DATA_A --domain-b DATA_B [--domain-b-weights COL]``. The engine
batches, weights, shuffles, splits across DDP ranks and resumes B like A; each batch of A is paired
with the next batch of B (unpaired data make the pairing exact). Domain B's preprocessing is fitted
on B's training events and saved with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.data.preprocess import Preprocessor, PreprocessSpec, resolve_kinds
from hepgen.errors import ConfigError
from hepgen.export import ExportGraph, GraphModule, Port, refusal
from hepgen.gans.adversarial import Adversarial
from hepgen.gans.networks import MLPCritic, MLPGenerator
from hepgen.models import Model, Stream, register


class _TranslationGraph(GraphModule):
    """a (batch, D_A) -> score −D_A(T(a)), translated T_B⁻¹(G(T(a))), cycle_error mean_d |F(G(u)) − u|."""

    def __init__(self, model: CycleGAN, generator: nn.Module):
        super().__init__(model)
        self.generator = generator

    def forward(self, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        u = m.preprocessor(a)
        b = self.generator["ab"](u)
        cycle = (self.generator["ba"](b) - u).abs().mean(1)
        return -m.critic["a"](u), m.preprocessor_b.inverse(b), cycle


@register
class CycleGAN(Adversarial):
    """Two dense generators A→B, B→A and two critics, trained adversarially with cycle consistency.

    Args:
        features: features per event of domain A.
        features_b: features per event of domain B (None: same as A; from ``domain_b`` in the CLI).
        hidden: hidden layer sizes of all four networks.
        loss: adversarial loss (default least-squares, as in the CycleGAN paper).
        cycle_weight: λ_cyc.
        identity_weight: λ_id, relative to λ_cyc (0 when the domains have different features).
        domain_b: data spec (path[:key]) of domain B, used by ``fit`` when ``streams`` gives no ``"b"``.
        domain_b_weights: per-event weights of domain B: a column of ``domain_b`` or FILE:KEY.
        activation, lr_critic, lr_generator, betas, ema, clip, gp_weight, critic_steps: as for :class:`GAN`.
        context: must be 0.
        preprocess: preprocessing of both domains.
    """

    cli_name = "cyclegan"
    #: its use is translating events (with a per-event score), not drawing them
    export_default = "score"

    def __init__(self, features: int, features_b: int | None = None, hidden: Sequence[int] = (128, 128),
                 loss: str = "least-squares", cycle_weight: float = 10.0, identity_weight: float = 0.5,
                 domain_b: str | None = None, domain_b_weights: str | None = None,
                 activation: str = "leaky_relu", critic_steps: int = 1,
                 lr_critic: float | None = None, lr_generator: float | None = None,
                 betas: Sequence[float] = (0.5, 0.999), ema: float = 0.0, clip: float = 0.01, gp_weight: float = 10.0,
                 context: int = 0, preprocess: PreprocessSpec = "standard"):
        if context:
            raise ConfigError("cyclegan translates between two domains and takes no context")
        super().__init__((int(features),), 0, preprocess)
        self.features = int(features)
        self.features_b = self.features if features_b is None else int(features_b)
        self.hidden = tuple(int(h) for h in hidden)
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        if self.identity_weight and self.features_b != self.features:
            raise ConfigError(f"the identity loss needs domains with the same features ({self.features} vs "
                              f"{self.features_b}); set identity_weight=0")
        self.domain_b, self.domain_b_weights, self.activation = domain_b, domain_b_weights, activation
        self._init_training(loss, critic_steps, lr_critic, lr_generator, betas, ema, clip, gp_weight)
        self.latent = 0
        default = "standard" if isinstance(preprocess, dict) else preprocess
        self.preprocessor_b = Preprocessor((self.features_b,), resolve_kinds(default, self.features_b))
        a, b, h = self.features, self.features_b, self.hidden
        self.generator = nn.ModuleDict({"ab": MLPGenerator(a, b, h, act=activation),
                                        "ba": MLPGenerator(b, a, h, act=activation)})
        self.critic = nn.ModuleDict({"a": MLPCritic(a, h, act=activation), "b": MLPCritic(b, h, act=activation)})
        self._finish_init()

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Model:
        """Domain A's shape from the data; domain B's from the ``domain_b`` spec when given."""
        if len(event_shape) != 1:
            raise ConfigError(f"cyclegan models tabular events (batch, features); got events of shape {event_shape}")
        if params.get("domain_b") and params.get("features_b") is None:
            from hepgen.data import io
            from hepgen.data.sources import is_column_name

            weights = params.get("domain_b_weights")
            source = io.open_source(params["domain_b"], exclude=[weights] if is_column_name(weights) else ())
            params["features_b"] = int(np.prod(source.event_shape))
            source.close()
        return cls(event_shape[0], context=context, **params)

    # -- the engine's second stream ------------------------------------------------------------------
    def streams(self) -> dict[str, Stream]:
        """Domain B, a second event stream: batched, weighted, shuffled, split across DDP ranks and resumed
        by the engine like domain A; its preprocessing is fitted on B's training events."""
        return {"b": Stream(data=self.domain_b, weights=self.domain_b_weights, preprocessor=self.preprocessor_b,
                            event_shape=(self.features_b,),
                            missing="cyclegan needs the events of domain B: fit(x, streams={'b': y}) or "
                                    "'hepgen fit cyclegan DATA_A --domain-b DATA_B'")}

    def _paired(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """Domain A's batch, a batch of B of the same size, and B's relative weights w_B / mean(w_B): (batch,).

        Each pair (a_i, b_i) is weighted by w_A,i (the engine) times w_B,i / mean(w_B) (here), so that the
        weighted mean over pairs estimates E_{a ~ w_A} E_{b ~ w_B} of the loss.
        """
        a = batch["x"]
        stream = batch.get("streams", {}).get("b")
        if stream is None:
            raise ConfigError("cyclegan steps need a batch of domain B (the engine's stream 'b')")
        b, wb = stream["x"], stream["w"]
        if len(b) != len(a):  # the last batch of an epoch pass: pair cyclically
            index = torch.arange(len(a), device=b.device) % len(b)
            b, wb = b[index], wb[index]
        return a, b.to(a.dtype), (wb / wb.mean()).to(a.dtype)

    # -- the engine's steps ----------------------------------------------------------------------
    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event losses (batch,) of the ``critic`` (both critics) or the ``generator`` (both generators)."""
        self._sync()
        a, b, wb = self._paired(batch)
        G, F = self.generator["ab"], self.generator["ba"]
        if player == "critic":
            with torch.no_grad():
                fake_b, fake_a = G(a), F(b)
            return _weighted(self._critic_losses_ab(a, b, fake_a, fake_b, penalty=True), wb)
        if player == "generator":
            self._ema_pending = True
            return _weighted(self._generator_losses(a, b), wb)
        raise ConfigError(f"cyclegan has players 'critic' and 'generator', not {player!r}")

    def _critic_losses_ab(self, a: Tensor, b: Tensor, fake_a: Tensor, fake_b: Tensor,
                          penalty: bool) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        total = 0.0
        for name, real, fake in (("a", a, fake_a), ("b", b, fake_b)):
            d = self.critic[name]
            r, f = d(real), d(fake)
            loss = self.adversarial_loss.critic(r, f)
            if self.adversarial_loss.lipschitz == "penalty" and penalty:
                from hepgen.gans.losses import gradient_penalty

                loss = loss + gradient_penalty(d, real, fake, weight=self.gp_weight)
            total = total + loss
            out[f"d_real_{name}"], out[f"d_fake_{name}"] = self._prob(r).detach(), self._prob(f).detach()
        out["loss"] = total
        return out

    def _generator_losses(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        G, F, L = self.generator["ab"], self.generator["ba"], self.adversarial_loss
        fake_b, fake_a = G(a), F(b)
        adversarial = L.generator(self.critic["b"](fake_b)) + L.generator(self.critic["a"](fake_a))
        cycle_a = (F(fake_b) - a).abs().mean(1)
        cycle_b = (G(fake_a) - b).abs().mean(1)
        loss = adversarial + self.cycle_weight * (cycle_a + cycle_b)
        out = {"adversarial": adversarial.detach(), "cycle_a": cycle_a.detach(), "cycle_b": cycle_b.detach()}
        if self.identity_weight:
            identity = (G(b) - b).abs().mean(1) + (F(a) - a).abs().mean(1)
            loss = loss + self.identity_weight * self.cycle_weight * identity
            out["identity"] = identity.detach()
        out["loss"] = loss
        return out

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Both players' losses on held-out A events and random B events (no gradient penalty)."""
        self._sync()
        a, b, wb = self._paired(batch)
        out = self._critic_losses_ab(a, b, self.generator["ba"](b), self.generator["ab"](a), penalty=False)
        out["critic_loss"] = out.pop("loss")
        gen = self._generator_losses(a, b)
        out["critic_loss"] = out["critic_loss"] * wb
        out["generator_loss"] = gen.pop("loss") * wb
        out.update(gen)
        return out

    # -- public API --------------------------------------------------------------------------------
    def transform(self, x: Tensor | np.ndarray) -> Tensor:
        """Translate domain A events to domain B, original units: (batch, features) -> (batch, features_b)."""
        return self.preprocessor_b.inverse(self._sampler()["ab"](self.to_internal(x)))

    def inverse_transform(self, y: Tensor | np.ndarray) -> Tensor:
        """Translate domain B events to domain A, original units: (batch, features_b) -> (batch, features)."""
        y = self._as_tensor(y)
        if tuple(y.shape[1:]) != (self.features_b,):
            raise ConfigError(f"domain B events have {self.features_b} features, got a batch of shape {tuple(y.shape)}")
        return self.to_external(self._sampler()["ba"](self.preprocessor_b(y)))

    @torch.no_grad()
    def cycle_error(self, x: Tensor | np.ndarray, domain: str = "a") -> Tensor:
        """Per-event |F(G(u)) − u|₁ (domain "a") or |G(F(u)) − u|₁ ("b") in standardised units: (batch,)."""
        gen = self._sampler()
        if domain == "a":
            u = self.to_internal(x)
            return (gen["ba"](gen["ab"](u)) - u).abs().mean(1)
        if domain == "b":
            u = self.preprocessor_b(self._as_tensor(x))
            return (gen["ab"](gen["ba"](u)) - u).abs().mean(1)
        raise ConfigError(f"domain must be 'a' or 'b', got {domain!r}")

    def rsample(self, n: int, context: Any = None, z: Tensor | None = None) -> Tensor:
        raise ConfigError("cyclegan translates events rather than drawing new ones: use transform(x) (A -> B) or "
                          "inverse_transform(y) (B -> A), or on the command line 'hepgen score RUN DATA_A -o OUT', "
                          "which writes the translated events")

    def sample(self, n: int, context: Any = None) -> Tensor:
        return self.rsample(n, context)

    @torch.no_grad()
    def score(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """Anomaly score −D_A(x) of domain A events: (batch,)."""
        if context is not None:
            raise ConfigError("cyclegan takes no context")
        return -self.critic["a"](self.to_internal(x))

    @torch.no_grad()
    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """What ``hepgen score RUN DATA_A`` writes per domain-A event: ``score`` (−D_A), ``translated``
        G(a) in domain B's units (batch, features_b) and ``cycle_error`` |F(G(a)) − a|₁ (batch,)."""
        return {"score": self.score(x, context), "translated": self.transform(x), "cycle_error": self.cycle_error(x)}

    def critic_output(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """D_A(x) on domain A events in the original units: (batch,)."""
        return self.critic["a"](self.to_internal(x))

    def export_graph(self, what: str) -> ExportGraph:
        """What :func:`hepgen.export.export` traces: only ``score``, a (batch, D_A) -> −D_A(T(a)), the translation
        T_B⁻¹(G(T(a))) and the cycle error (the EMA generators when there are some)."""
        if what != "score":
            raise refusal(self, what, "CycleGAN translates events rather than drawing them and has no density; "
                                      "--what score exports the translation A -> B with −D_A(a) and the cycle error")
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        outputs = [Port("score", (), "−D_A(x)"),
                   Port("translated", (self.features_b,), "G(x): the events translated to domain B, its units"),
                   Port("cycle_error", (), "mean |F(G(u)) − u| in domain A's preprocessed units")]
        inputs = [Port("x", (self.features,), "domain A events in original units")]
        return ExportGraph(_TranslationGraph(self, generator), inputs, outputs)


def _weighted(losses: dict[str, Tensor], wb: Tensor) -> dict[str, Tensor]:
    """The objective of each pair times domain B's relative weight (diagnostics unweighted)."""
    losses["loss"] = losses["loss"] * wb
    return losses
