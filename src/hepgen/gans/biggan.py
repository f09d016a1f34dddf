"""A class-conditional GAN for images with BigGAN's ingredients (Brock et al. 2018): ``hepgen fit big-gan``.

    x̃ = G(z, y, c),  z ~ N(0, I),  y ∈ {classes} (particle type, jet process),  c continuous (energy, pT)
    generator   e = [E y, c] (one class embedding E shared by every layer); each residual up block
                h ← conv(ReLU(CBN(conv(up(ReLU(CBN(h, e_l)))), e_l))) + conv₁ₓ₁(up(h)),
                CBN(h, e) = (1 + γ(e)) ⊙ BN(h) + β(e) (class-conditional batch norm, γ and β linear in e);
                hierarchical latent: z = [z₀, z₁, …], z₀ → the first linear layer, e_l = [e, z_l] for block l
    critic      D(x, y, c) = ψ(φ(x)) + ⟨E_D y, φ(x)⟩ + ⟨V c, φ(x)⟩   (projection discriminator, Miyato & Koyama
                2018), φ a spectrally normalised conv encoder
    losses      hinge (BigGAN's); the generator adds β Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F over its conv and linear weights W
                reshaped to (out, fan_in) (BigGAN's off-diagonal orthogonal regularisation; Wᵀ W for a tall W, see
                :func:`orthogonal_penalty`), the class embedding excepted
    truncation  sample(..., truncation=ψ): z ~ N(0, I) conditioned on |z_i| ≤ ψ (components beyond ±ψ redrawn):
                fidelity for diversity; ψ → 0 gives G(0, y, c), the "mean" image of the class

The condition. The class is one column of the context (``hepgen fit big-gan DATA --context energy,ptype
--class-column ptype``; with a single context column that column is the class). Its values are numbers (a PDG
id 11/22/211, a process index); the distinct values of the training data are the model's classes (``classes_``,
recorded in config.yaml's ``fitted`` section and in the weights), unless given up front (``classes=[11, 22,
211]``, which then refuses any other value in the training data). The class column is not preprocessed; the
other context columns are standardised as usual and enter through the projection ⟨V c, φ(x)⟩ and through e.
A value outside the classes is refused where it is met: in the training or validation file (naming the file,
column and row, before any training), in ``sample``/``score`` contexts (naming the row), and in each block of
``hepgen sample --context FILE`` (naming the file and row).

Batch norm: the generator trains on batch statistics and samples with its running statistics (eval mode),
so ``sample`` is deterministic given z. The EMA generator (``ema``) samples, as for every hepgen GAN.

ONNX: ``export --what sample`` traces z (batch, latent), context (batch, k) → image with the class lookup
(nearest class value) folded in; truncation is the caller's (draw z from the truncated normal).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError, DataError
from hepgen.gans.adversarial import Adversarial, ImageEvents
from hepgen.models import register
from hepgen.nn.conv import ConvEncoder, auto_downsample, image_shape, spatial_sizes
from hepgen.nn.mlp import MLP, activation
from hepgen.options import excerpt

#: more distinct values than this in the class column is a continuous column named as the class by mistake
MAX_CLASSES = 256


# -- the truncation trick and the orthogonal regulariser ---------------------------------------------------------
def truncated_normal(shape: Sequence[int], threshold: float, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None, generator: torch.Generator | None = None) -> Tensor:
    """z ~ N(0, 1) per component conditioned on |z| ≤ ``threshold`` (BigGAN's truncation: a component beyond ±ψ
    is redrawn until inside), of ``shape``. Exact: by the inverse CDF, z = Φ⁻¹(u), u ~ U(Φ(−ψ), Φ(ψ)), in float64
    for ψ < 5, and by redrawing above (where fewer than 6 in 10⁷ components fall outside). ψ = 0 gives zeros."""
    psi = float(threshold)
    if not math.isfinite(psi) or psi < 0:
        raise ConfigError(f"truncation must be a finite number >= 0, got {excerpt(threshold)}")
    dtype = dtype or torch.get_default_dtype()
    if psi < 5.0:
        lo = 0.5 * math.erfc(psi / math.sqrt(2.0))  # Φ(−ψ)
        u = torch.rand(tuple(shape), generator=generator, device=device, dtype=torch.float64)
        z = torch.special.ndtri(lo + (1.0 - 2.0 * lo) * u)
        return z.clamp_(-psi, psi).to(dtype)
    z = torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
    outside = z.abs() > psi
    while bool(outside.any()):
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=device, dtype=dtype)
        outside = z.abs() > psi
    return z


def orthogonal_penalty(weights: Iterable[Tensor]) -> Tensor:
    """Σ_W ‖G ⊙ (1 − I)‖²_F: BigGAN's orthogonal regulariser without the diagonal, which leaves the norms free
    (Brock et al. 2018, eq. 3), with each W reshaped to (out, fan_in) and G = W Wᵀ the Gram matrix of its rows (the
    filters) — or, for a tall W (more outputs than inputs, e.g. the first layer from z), G = Wᵀ W of its columns:
    more than fan_in rows cannot be mutually orthogonal, and penalising their products would only shrink them: 0-dim.
    """
    total: Tensor | None = None
    for w in weights:
        m = w.reshape(w.shape[0], -1)
        gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        off = gram - torch.diag_embed(torch.diagonal(gram))
        term = (off * off).sum()
        total = term if total is None else total + term
    if total is None:
        raise ConfigError("orthogonal_penalty needs at least one weight")
    return total


# -- building blocks ----------------------------------------------------------------------------------------------
class ClassSplit(nn.Module):
    """Context (B, k) -> (one-hot class (B, K), the other columns (B, k − 1)).

    The class column is picked and the rest kept by fixed selection matrices (buffers, saved with the weights);
    the class is the nearest of ``values`` (exact values are checked before the networks see them). Pure tensor
    ops, so the lookup traces to ONNX.
    """

    def __init__(self, values: Sequence[float], columns: int):
        super().__init__()
        self.register_buffer("values", torch.tensor([float(v) for v in values]))
        self.register_buffer("pick", torch.zeros(columns, 1))
        self.register_buffer("rest", torch.zeros(columns, columns - 1))
        self.set_column(0)

    def set_column(self, index: int) -> None:
        """Make context column ``index`` the class column."""
        k = self.pick.shape[0]
        with torch.no_grad():
            self.pick.zero_()
            self.pick[index, 0] = 1.0
            self.rest.zero_()
            others = [j for j in range(k) if j != index]
            for out, j in enumerate(others):
                self.rest[j, out] = 1.0

    @property
    def column(self) -> int:
        return int(self.pick[:, 0].argmax())

    @property
    def classes(self) -> int:
        return self.values.numel()

    def forward(self, context: Tensor) -> tuple[Tensor, Tensor]:
        value = context @ self.pick.to(context.dtype)  # (B, 1)
        index = (value - self.values.to(context.dtype)[None]).abs().argmin(dim=1)
        onehot = (index[:, None] == torch.arange(self.classes, device=context.device)[None]).to(context.dtype)
        return onehot, context @ self.rest.to(context.dtype)


class ConditionalBatchNorm2d(nn.Module):
    """(B, C, H, W), condition e (B, cond) -> (1 + γ(e)) ⊙ BN(h) + β(e), BN without its own affine; γ and β are
    linear in e, zero at initialisation (so the layer starts as a plain batch norm). With e a one-hot class the
    gain and bias are the class's own: 1 + W_γ[:, y] + b_γ and W_β[:, y] + b_β."""

    def __init__(self, channels: int, cond: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond, channels)
        self.bias = nn.Linear(cond, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.norm.reset_running_stats()
        for layer in (self.gain, self.bias):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        gamma, beta = 1.0 + self.gain(e), self.bias(e)
        return self.norm(h) * gamma[:, :, None, None] + beta[:, :, None, None]


class UpBlock(nn.Module):
    """BigGAN's residual generator block: (B, c_in, h, w), e -> (B, c_out, *size).

        out = conv₂(ReLU(CBN₂(conv₁(up(ReLU(CBN₁(h, e)))), e))) + conv₁ₓ₁(up(h)),  up = nearest-neighbour to ``size``
    """

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int], cond: int, kernel_size: int):
        super().__init__()
        self.size = tuple(int(s) for s in size)
        pad = kernel_size // 2
        self.bn1, self.bn2 = ConditionalBatchNorm2d(c_in, cond), ConditionalBatchNorm2d(c_out, cond)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size, padding=pad)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def _up(self, h: Tensor) -> Tensor:
        return h if tuple(h.shape[-2:]) == self.size else F.interpolate(h, size=self.size, mode="nearest")

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        out = self.conv1(self._up(F.relu(self.bn1(h, e))))
        out = self.conv2(F.relu(self.bn2(out, e)))
        return out + self.skip(self._up(h))


class ClassGenerator(nn.Module):
    """G: z (B, latent), context (B, k) -> image (B, *shape) in preprocessed units (module doc).

    The blocks mirror the critic's encoder (``channels`` in the encoder's order, the same stride-2 layers), so
    any H, W comes back exactly.
    """

    def __init__(self, latent: int, shape: Sequence[int], channels: Sequence[int], split: ClassSplit, embed: int,
                 hierarchical: bool, kernel_size: int):
        super().__init__()
        self.shape, self.image = tuple(int(s) for s in shape), image_shape(shape)
        channels = [int(c) for c in channels]
        self.split = split
        self.embed = nn.Linear(split.classes, embed, bias=False)  # the shared class embedding E (one row a class)
        cont = split.rest.shape[1]
        blocks = len(channels)
        self.hierarchical = bool(hierarchical)
        if self.hierarchical:  # z₀ for the first layer, one chunk per block
            base, extra = divmod(int(latent), blocks + 1)
            self.chunks = [base + (1 if i < extra else 0) for i in range(blocks + 1)]
            if min(self.chunks) < 1:
                raise ConfigError(f"a hierarchical latent splits z into {blocks + 1} chunks (one per block and one "
                                  f"for the first layer): latent must be >= {blocks + 1}, got {latent}")
        else:
            self.chunks = [int(latent)]
        downsample = auto_downsample(shape, blocks)
        sizes = spatial_sizes(shape, downsample)
        self.start = (channels[-1], *sizes[-1])
        self.linear = nn.Linear(self.chunks[0], int(np.prod(self.start)))
        self.blocks = nn.ModuleList()
        for j in range(blocks):
            i = blocks - 1 - j  # the encoder layer this block mirrors
            c_in, c_out = channels[i], channels[max(i - 1, 0)]
            cond = embed + cont + (self.chunks[j + 1] if self.hierarchical else 0)
            self.blocks.append(UpBlock(c_in, c_out, sizes[min(i, downsample)], cond, kernel_size))
        self.out_norm = nn.BatchNorm2d(channels[0])
        self.out = nn.Conv2d(channels[0], self.image[0], kernel_size, padding=kernel_size // 2)

    def regularised_weights(self) -> list[Tensor]:
        """The weights of the orthogonal regulariser: every conv and linear weight but the class embedding."""
        return [m.weight for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not self.embed]

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        if context is None:
            raise ConfigError("big-gan is class-conditional; pass context=")
        onehot, cont = self.split(context)
        e = torch.cat([self.embed(onehot), cont], dim=1)
        zs = torch.split(z, self.chunks, dim=1) if self.hierarchical else (z,)
        h = self.linear(zs[0]).reshape(z.shape[0], *self.start)
        for j, block in enumerate(self.blocks):
            h = block(h, torch.cat([e, zs[j + 1]], dim=1) if self.hierarchical else e)
        h = self.out(F.relu(self.out_norm(h)))
        return h.reshape(z.shape[0], *self.shape)


class ProjectionCritic(nn.Module):
    """D: image (B, *shape), context (B, k) -> ψ(φ(x)) + ⟨E_D y, φ(x)⟩ + ⟨V c, φ(x)⟩ (B,) (module doc)."""

    def __init__(self, shape: Sequence[int], channels: Sequence[int], split: ClassSplit, width: int,
                 kernel_size: int, spectral_norm: bool):
        super().__init__()
        self.split = split
        self.phi = nn.Sequential(ConvEncoder(shape, channels, width, kernel_size=kernel_size, activation="relu",
                                             spectral_norm=spectral_norm), activation("relu"))
        self.head = MLP._linear(width, 1, spectral_norm)
        self.embed = MLP._linear(split.classes, width, spectral_norm)  # E_D: column y is the class's embedding
        cont = split.rest.shape[1]
        self.project = MLP._linear(cont, width, spectral_norm) if cont else None

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if context is None:
            raise ConfigError("big-gan is class-conditional; pass context=")
        onehot, cont = self.split(context)
        h = self.phi(x)
        out = self.head(h).squeeze(-1) + (self.embed(onehot) * h).sum(-1)
        if self.project is not None:
            out = out + (self.project(cont) * h).sum(-1)
        return out


# -- the model ------------------------------------------------------------------------------------------------------
def _class_column(value: Any, context: int) -> str | int | None:
    """``class_column`` as given: None, a column name, or an int index into the ``context`` columns (checked)."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if not 0 <= int(value) < context:
            raise ConfigError(f"big-gan: class_column {int(value)} is no index of the {context} context column(s) "
                              f"(0 to {context - 1}); or name the column")
        return int(value)
    return str(value)


@register
class BigGAN(ImageEvents, Adversarial):
    """Class-conditional GAN for images with BigGAN's ingredients (module doc): jet images by process, calorimeter
    layers by particle type, each beside a continuous condition (energy, pT).

    Args:
        shape: event shape (C, H, W) or (H, W).
        context: context columns, one of them the class.
        class_column: the context column that holds the class: a name from ``--context`` (``context_j`` for
            unnamed contexts) or its index j (an int, ``class_column=1`` for an array ``[energy, pdg]``); None: the
            only context column.
        classes: the class values, fixed up front (None: the distinct values of the training data).
        latent: size of z. channels: conv channels of the critic, in order; the generator mirrors them.
        kernel_size: odd kernel side. width: feature width φ(x) of the projection critic.
        embed: size of the shared class embedding of the generator.
        hierarchical: split z over the first layer and every block (BigGAN's hierarchical latent).
        ortho_weight: β of the orthogonal regulariser on the generator (0: none; BigGAN 1e-4).
        spectral_norm: spectral normalisation of every critic layer (BigGAN: yes).
        loss: an adversarial loss (:mod:`hepgen.gans.losses`; BigGAN's hinge by default).
        critic_steps: critic steps per generator step.
        lr_critic: learning rate of the critic (None: the fit lr).
        lr_generator: learning rate of the generator (None: the fit lr).
        betas: Adam betas of both players ((0, 0.999) as in BigGAN).
        ema: decay of the generator's exponential moving average (0: none); samples come from the EMA generator.
        clip: weight-clipping bound c for loss="wgan".
        gp_weight: λ of the gradient penalty for loss="wgan-gp".
        preprocess: the pixels' preprocessing.

    Fitted: ``classes_`` (the class values, in the order of the embeddings' columns) and ``class_column_``.
    """

    cli_name = "big-gan"
    freeze_critic_in_generator_step = True  # no critic weight gradients in a generator step (faster)
    tabular_hint = "cgan conditions tabular events"

    def __init__(self, shape: Sequence[int], context: int = 1, class_column: str | int | None = None,
                 classes: Sequence[float] | None = None, latent: int = 64, channels: Sequence[int] = (32, 64),
                 kernel_size: int = 3, width: int = 64, embed: int = 16, hierarchical: bool = True,
                 ortho_weight: float = 1e-4, spectral_norm: bool = True, loss: str = "hinge", critic_steps: int = 1,
                 lr_critic: float | None = None, lr_generator: float | None = None,
                 betas: Sequence[float] = (0.0, 0.999), ema: float = 0.99, clip: float = 0.01,
                 gp_weight: float = 10.0, preprocess: PreprocessSpec = "standard"):
        super().__init__(tuple(int(s) for s in shape), context, preprocess)
        if len(self.event_shape) not in (2, 3):
            raise ConfigError(f"big-gan models images (C, H, W) or (H, W), not events of shape {self.event_shape}")
        if self.context < 1:
            raise ConfigError("big-gan is class-conditional: give the class column in the context (--context "
                              "ptype, or --context energy,ptype --class-column ptype)")
        for name, value in (("latent", latent), ("width", width), ("embed", embed)):
            if int(value) < 1:
                raise ConfigError(f"big-gan: {name} must be positive, got {value!r}")
        if not channels or min(int(c) for c in channels) < 1:
            raise ConfigError(f"big-gan: channels must list positive channel counts, got {channels!r}")
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ConfigError(f"big-gan: kernel_size must be odd, got {kernel_size!r}")
        if not float(ortho_weight) >= 0:
            raise ConfigError(f"big-gan: ortho_weight must be >= 0, got {ortho_weight!r}")
        self.shape, self.latent = tuple(int(s) for s in shape), int(latent)
        self.class_column = _class_column(class_column, self.context)
        self.classes = None if classes is None else [float(v) for v in classes]
        self.channels, self.kernel_size = tuple(int(c) for c in channels), int(kernel_size)
        self.width, self.embed, self.hierarchical = int(width), int(embed), bool(hierarchical)
        self.ortho_weight, self.spectral_norm = float(ortho_weight), bool(spectral_norm)
        self._init_training(loss, critic_steps, lr_critic, lr_generator, betas, ema, clip, gp_weight)
        self.class_column_: str | None = None
        self.generator: nn.Module | None = None
        self.critic: nn.Module | None = None
        self.generator_ema: nn.Module | None = None
        if self.classes is not None:
            self._build(self._checked_classes(self.classes, "classes"))
            if self.context == 1 and isinstance(self.class_column, str):
                self.class_column_ = self.class_column

    # -- classes and networks ------------------------------------------------------------------------------------
    @staticmethod
    def _checked_classes(values: Sequence[float], where: str) -> list[float]:
        values = [float(v) for v in values]
        if not values or not all(math.isfinite(v) for v in values):
            raise ConfigError(f"big-gan: {where} must list finite class values, got {excerpt(values)}")
        if len(set(values)) != len(values):
            raise ConfigError(f"big-gan: {where} lists a class twice: {excerpt(values)}")
        if len(values) > MAX_CLASSES:
            raise ConfigError(f"big-gan: {len(values)} classes; at most {MAX_CLASSES}")
        return values

    def _build(self, classes: list[float]) -> None:
        """The networks for these class values (called once: at construction or when the training data name
        the classes)."""
        split = ClassSplit([float(np.float32(v)) for v in classes], self.context)
        try:
            self.generator = ClassGenerator(self.latent, self.shape, self.channels, split, self.embed,
                                            self.hierarchical, self.kernel_size)
            self.critic = ProjectionCritic(self.shape, self.channels, split, self.width, self.kernel_size,
                                           self.spectral_norm)
        except ValueError as exc:
            raise ConfigError(f"big-gan: {exc}") from None
        self.generator_ema = None
        self._finish_init()

    @property
    def split(self) -> ClassSplit:
        if self.generator is None:
            raise ConfigError("big-gan has not been fitted: its classes come from the class column of the training "
                              "data (or give classes=[...] up front)")
        return self.generator.split

    @property
    def classes_(self) -> list[float] | None:
        return None if self.generator is None else [float(v) for v in self.split.values.tolist()]

    def _column_names(self, names: Sequence[str] | None) -> list[str]:
        return list(names) if names else [f"context_{j}" for j in range(self.context)]

    def _resolve_column(self, names: list[str]) -> int:
        if self.class_column is None:
            if self.context > 1:
                raise ConfigError(f"big-gan: the context has {self.context} columns ({', '.join(names)}); name the "
                                  "one that holds the class: --class-column NAME (class_column=)")
            return 0
        if str(self.class_column) not in names and str(self.class_column).isdigit():  # an index (a name wins)
            index = int(self.class_column)  # an int from Python, digits from the command line or a config
            if index >= len(names):
                raise ConfigError(f"big-gan: --class-column {index} is no index of the {len(names)} context "
                                  f"column(s) ({', '.join(names)})")
            return index
        if str(self.class_column) not in names:
            raise ConfigError(f"big-gan: --class-column {excerpt(self.class_column)} is not a context column; the "
                              f"context columns: {', '.join(names)}")
        return names.index(str(self.class_column))

    def check_context(self, values: np.ndarray, names: Sequence[str] | None, where: str) -> None:
        """The engine's check of the training (and validation) contexts, before any training: the class column is
        found, its values must be finite and, once the classes are known, one of them (DataError naming the file,
        column and row). The first call on an unbuilt model takes the distinct values as the classes."""
        names = self._column_names(names)
        index = self._resolve_column(names)
        column = np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, index]
        name = names[index]
        bad = ~np.isfinite(column)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{where}: column '{name}' (the class) is {column[row]} at row {row}")
        if self.generator is None:
            found = np.unique(column.astype(np.float32))
            if len(found) > MAX_CLASSES:
                raise DataError(f"{where}: column '{name}' has {len(found)} distinct values; a class column takes "
                                f"at most {MAX_CLASSES} (is it the continuous condition? name the class column with "
                                "--class-column)")
            fractional = column != np.round(column)
            if fractional.any():  # labels are integers (a PDG id, a process index); a float column is the energy
                row = int(np.argmax(fractional))
                raise DataError(f"{where}: column '{name}' (the class) is {column[row]:g} at row {row}, not an integer "
                                "label; is it the continuous condition? name the class column with --class-column, "
                                "or give the classes up front with --classes")
            self._build([float(v) for v in found])
        for net in (self.generator, self.critic, self.generator_ema):
            if net is not None:
                net.split.set_column(index)
        self.class_column_ = name
        kinds = ["standard"] * self.context
        kinds[index] = "none"  # the class values reach the networks as they are
        self.context_preprocessor.set_kinds(kinds)
        self._check_class_values(column, f"{where}: column '{name}'", 0, DataError)

    def _check_class_values(self, column: np.ndarray, what: str, first_row: int, error: type) -> None:
        values = self.split.values.double().cpu().numpy()
        col = np.asarray(column, dtype=np.float64)
        known = np.isclose(col[:, None], values[None], rtol=1e-6, atol=1e-6).any(1)
        if not known.all():
            row = int(np.argmax(~known))
            shown = ", ".join(f"{v:g}" for v in values[:12]) + (" ..." if len(values) > 12 else "")
            raise error(f"{what} is {col[row]:g} at row {first_row + row}: not one of the classes this "
                        f"{self.cli_name} knows ({shown})")

    def check_sample_context(self, values: Any, where: str, first_row: int = 0) -> None:
        """``hepgen sample``'s check of a block of context rows (n, k) from ``where`` (a file, or the option)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, self.context)
        name = self.class_column_ or f"context_{self.split.column}"
        self._check_class_values(values[:, self.split.column], f"{where}: column '{name}' (the class)", first_row,
                                 DataError)

    def context_to_internal(self, context: Tensor | np.ndarray | None, batch: int | None = None) -> Tensor | None:
        """As :meth:`Model.context_to_internal`, refusing class values the model does not know (naming the row)."""
        c = super().context_to_internal(context, batch)
        if c is not None:
            column = c[:, self.split.column].detach().double().cpu().numpy()
            self._check_class_values(column, "context: the class (column "
                                     f"'{self.class_column_ or f'context_{self.split.column}'}')", 0, ConfigError)
        return c

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """A saved run's weights name its classes: an unbuilt model builds its networks for them first."""
        values = state_dict.get("generator.split.values") if hasattr(state_dict, "get") else None
        if self.generator is None and values is not None:
            self._build([float(v) for v in values.tolist()])
        elif values is not None:  # a resumed fit built its networks for the classes of its training data first
            saved, built = [float(v) for v in values.tolist()], self.classes_ or []
            if len(saved) != len(built) or not np.allclose(saved, built, rtol=1e-6, atol=1e-6):
                new = [v for v in built if not np.isclose(saved, v, rtol=1e-6, atol=1e-6).any()]
                shown = ", ".join(f"{v:g}" for v in saved[:12]) + (" ..." if len(saved) > 12 else "")
                raise ValueError(f"its big-gan knows the classes {shown}, but the class column "
                                 f"'{self.class_column_}' of the training data holds "
                                 + (f"{', '.join(f'{v:g}' for v in new[:12])} as well" if new else
                                    f"only {', '.join(f'{v:g}' for v in built[:12])}")
                                 + "; continue it on events of its classes, or start a new run")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "classes": self.classes_, "class_column": self.class_column_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.class_column_ = state.get("class_column")

    def reset_parameters(self) -> None:
        """Re-draw the networks (once built); the conditional batch norms start as plain ones (γ = 1, β = 0)."""
        if self.generator is None:
            return
        super().reset_parameters()
        for m in self.generator.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.reset_parameters()
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(self.generator.state_dict())

    # -- training -------------------------------------------------------------------------------------------------
    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The adversarial losses; the generator's adds ``ortho_weight`` × the orthogonal penalty (logged as
        ``orthogonal``)."""
        out = super().player_step(player, batch)
        if player == "generator" and self.ortho_weight > 0:
            penalty = orthogonal_penalty(self.generator.regularised_weights())
            out["loss"] = out["loss"] + self.ortho_weight * penalty
            out["orthogonal"] = penalty.detach().expand(len(out["loss"]))
        return out

    # -- sampling -----------------------------------------------------------------------------------------------------
    def draw_latent(self, n: int, truncation: float | None = None) -> Tensor:
        """z (n, latent): N(0, I), or truncated to |z_i| ≤ ``truncation`` (:func:`truncated_normal`)."""
        if truncation is None:
            return super().draw_latent(n)
        return truncated_normal((n, self.latent), truncation, device=self.device, dtype=self.dtype)

    def rsample(self, n: int, context: Tensor | np.ndarray | None = None, z: Tensor | None = None,
                truncation: float | None = None) -> Tensor:
        """Differentiable images (n, *shape) in the original units given the context (the class column among
        it: one row for all, or one per image). ``z``: an (n, latent) latent batch; ``truncation`` ψ: z drawn
        with every component within ±ψ (BigGAN's truncation trick; None: no truncation; not with ``z``)."""
        if z is not None and truncation is not None:
            raise ConfigError("give z= or truncation=, not both (truncation draws z)")
        n = int(n)
        c = self.context_to_internal(context, n)
        z = self.draw_latent(n, truncation) if z is None else self._as_tensor(z)
        return self.to_external(self._sampler()(z, c))

    @torch.no_grad()
    def sample(self, n: int, context: Tensor | np.ndarray | None = None, truncation: float | None = None) -> Tensor:
        """n images in the original units (EMA generator), the truncation trick with ``truncation`` = ψ: each latent
        component beyond ±ψ redrawn (ψ → 0: the class's mean image G(0, y, c); None: off)."""
        return self.rsample(n, context, truncation=truncation)
