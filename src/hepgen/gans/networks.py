"""Dense generator and critic networks of the GAN family, built on :class:`hepgen.nn.MLP`.

    generator     x̃ = G([z, c])                                   z: (batch, latent) -> (batch, features)
    concat critic D(x, c) = f([x, c])                             -> (batch,)
    projection    D(x, c) = ψ(φ(x)) + ⟨V c, φ(x)⟩                 (Miyato & Koyama 2018, continuous c)

The generator is an ordinary differentiable function of its context, so gradients reach c.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from hepgen.errors import ConfigError
from hepgen.nn.mlp import MLP, activation

CONDITIONING = ("concat", "projection")


class MLPGenerator(nn.Module):
    """G: (batch, latent) [+ context (batch, c)] -> (batch, features)."""

    def __init__(self, latent: int, features: int, hidden: Sequence[int], context: int = 0,
                 act: str = "leaky_relu"):
        super().__init__()
        self.net = MLP(latent, features, hidden, context=context, activation=act)

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(z, context)


class MLPCritic(nn.Module):
    """D: (batch, features) [+ context (batch, c)] -> (batch,), concatenation or projection conditioning."""

    def __init__(self, features: int, hidden: Sequence[int], context: int = 0, conditioning: str = "concat",
                 act: str = "leaky_relu", spectral_norm: bool = False):
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ConfigError(f"unknown conditioning {conditioning!r}; choose {' or '.join(CONDITIONING)}")
        if not hidden:
            raise ConfigError("the critic needs at least one hidden layer (hidden=...)")
        self.projection = conditioning == "projection" and context > 0
        if self.projection:
            hidden = list(hidden)
            self.phi = nn.Sequential(MLP(features, hidden[-1], hidden[:-1], activation=act,
                                         spectral_norm=spectral_norm), activation(act))
            self.head = MLP._linear(hidden[-1], 1, spectral_norm)
            self.embed = MLP._linear(context, hidden[-1], spectral_norm)
        else:
            self.net = MLP(features, 1, hidden, context=context, activation=act, spectral_norm=spectral_norm)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.projection:
            if context is None:
                raise ConfigError("this critic is conditional; pass context=")
            h = self.phi(x)
            return self.head(h).squeeze(-1) + (self.embed(context) * h).sum(-1)
        return self.net(x, context).squeeze(-1)


class ConvGenerator(nn.Module):
    """DCGAN-style G: z (batch, latent) [+ c] -> image (batch, *shape), a :class:`hepgen.nn.conv.ConvDecoder`
    with batch norm and a linear (unbounded) output in preprocessed units."""

    def __init__(self, latent: int, shape: Sequence[int], channels: Sequence[int], context: int = 0,
                 act: str = "relu", kernel_size: int = 3):
        super().__init__()
        from hepgen.nn.conv import ConvDecoder

        self.shape = tuple(int(s) for s in shape)
        self.net = ConvDecoder(latent, self.shape, channels, kernel_size=kernel_size, activation=act, norm="batch",
                               context=context)

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(z, context).reshape(z.shape[0], *self.shape)


class ConvCritic(nn.Module):
    """DCGAN-style D: image (batch, *shape) [+ c] -> (batch,), a :class:`hepgen.nn.conv.ConvEncoder`
    (no batch norm: it would couple the events of a batch and break the per-event gradient penalty)."""

    def __init__(self, shape: Sequence[int], channels: Sequence[int], context: int = 0, conditioning: str = "concat",
                 act: str = "leaky_relu", spectral_norm: bool = False, kernel_size: int = 3, width: int = 64):
        super().__init__()
        from hepgen.nn.conv import ConvEncoder

        if conditioning not in CONDITIONING:
            raise ConfigError(f"unknown conditioning {conditioning!r}; choose {' or '.join(CONDITIONING)}")
        self.projection = conditioning == "projection" and context > 0
        if self.projection:
            self.phi = nn.Sequential(ConvEncoder(shape, channels, width, kernel_size=kernel_size, activation=act,
                                                 spectral_norm=spectral_norm), activation(act))
            self.head = MLP._linear(width, 1, spectral_norm)
            self.embed = MLP._linear(context, width, spectral_norm)
        else:
            self.net = ConvEncoder(shape, channels, 1, kernel_size=kernel_size, activation=act,
                                   spectral_norm=spectral_norm, context=context)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.projection:
            if context is None:
                raise ConfigError("this critic is conditional; pass context=")
            h = self.phi(x)
            return self.head(h).squeeze(-1) + (self.embed(context) * h).sum(-1)
        return self.net(x, context).squeeze(-1)
