"""Masked layers and MADE (Germain et al. 2015): one network whose output for feature i depends only
on the features before i in a chosen order (and on an unmasked context).

    h = act((W ⊙ M) [x, c] + b)   (one masked matmul per layer)

Degrees: input feature at order position k has degree k + 1 (1..D); hidden units get degrees 1..D-1
(0..D-1 with a context: degree 0 sees only the context) in equal shares, sorted, so that the units a
feature may see form a prefix of every hidden layer; a hidden unit sees inputs of degree <= its own, an
output of feature degree d sees hidden units of degree < d. Context inputs are connected to every
first-layer hidden unit.

All P parameters of all D features come out of one pass; parameter-major (the default) computes the output
layer as (W ⊙ M) hᵀ, so the (batch, D, P) result is a view of memory laid out (P, D, batch) and elementwise
transformers such as splines run along contiguous rows. :meth:`MADE.feature_params` evaluates only the prefixes one
feature needs (the sequential inverse of an autoregressive flow uses it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from hepgen.nn.mlp import activation as make_activation


class MaskedLinear(nn.Linear):
    """y = x (W ⊙ M)ᵀ + b with a fixed binary mask M: (out_features, in_features)."""

    def __init__(self, mask: Tensor, bias: bool = True):
        out_features, in_features = mask.shape
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(torch.get_default_dtype()))

    def masked_weight(self) -> Tensor:
        """W ⊙ M: (out_features, in_features)."""
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


class _MaskedReluMLP(torch.autograd.Function):
    """The whole masked ReLU network as one autograd node: h_{k+1} = relu((W_k ⊙ M_k) h_k + b_k), last layer
    linear, optionally computed transposed ((W ⊙ M) hᵀ: parameter-major output). The backward pass is the
    textbook one (two matmuls, a column sum and a ReLU mask per layer, weight gradients masked in place),
    without the bookkeeping of recording the forward pass op by op; every product is oriented the way
    the GEMM library runs fastest on these thin shapes (measured: x Wᵀ with the bias added afterwards rather
    than inside addmm, weight gradients as (hᵀ g)ᵀ when the input side is narrow)."""

    @staticmethod
    def forward(ctx, x: Tensor, masks: tuple[Tensor, ...], transposed: bool, *weights_and_biases: Tensor) -> Tensor:
        weights, biases = weights_and_biases[0::2], weights_and_biases[1::2]
        masked = [w * m for w, m in zip(weights, masks)]
        hs = [x]
        h = x
        for w, b in zip(masked[:-1], biases[:-1]):
            h = torch.mm(h, w.t()).add_(b).relu_()
            hs.append(h)
        if transposed:
            out = torch.mm(masked[-1], h.t()).add_(biases[-1].unsqueeze(1))
        else:
            out = torch.mm(h, masked[-1].t()).add_(biases[-1])
        ctx.hs, ctx.masked, ctx.masks, ctx.transposed = hs, masked, masks, transposed
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        hs, masked, masks = ctx.hs, ctx.masked, ctx.masks
        n = len(masked)
        grads: list[Tensor | None] = [None] * (2 * n)
        if ctx.transposed:  # out = (W ⊙ M) hᵀ + b: g is (out, batch)
            grads[2 * n - 2] = torch.mm(g, hs[-1]).mul_(masks[-1])
            grads[2 * n - 1] = g.sum(1)
            g = torch.mm(g.t(), masked[-1])
        else:
            grads[2 * n - 2] = torch.mm(g.t(), hs[-1]).mul_(masks[-1])
            grads[2 * n - 1] = g.sum(0)
            g = torch.mm(g, masked[-1])
        for k in range(n - 2, -1, -1):
            g = torch.ops.aten.threshold_backward(g, hs[k + 1], 0)
            h = hs[k]
            gw = torch.mm(h.t(), g).t() if h.shape[1] < g.shape[1] else torch.mm(g.t(), h)
            grads[2 * k] = gw.mul_(masks[k])
            grads[2 * k + 1] = g.sum(0)
            g = torch.mm(g, masked[k]) if (k > 0 or ctx.needs_input_grad[0]) else None
        return (g, None, None, *grads)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation: x (batch, D) [+ context (batch, c)] -> (batch, D, P).

    Args:
        features: D.
        params: P, numbers per feature the output parametrises.
        hidden: sizes of the hidden layers (each should be >= D - 1 to keep every connection).
        context: size of the context vector.
        order: the autoregressive order, a permutation of range(D) (default 0, 1, ..., D-1).
        activation: hidden activation name (see :func:`hepgen.nn.mlp.activation`).
        param_major: lay the output out in memory as (P, D, batch) (for transformers that run along rows,
            like splines) instead of (batch, D, P); the returned shape is (batch, D, P) either way.
    """

    def __init__(self, features: int, params: int, hidden: Sequence[int] = (128, 128), *, context: int = 0,
                 order: Sequence[int] | None = None, activation: str = "relu", param_major: bool = True):
        super().__init__()
        self.features, self.params, self.context = int(features), int(params), int(context)
        self.param_major = bool(param_major)
        order_t = torch.arange(features) if order is None else torch.as_tensor(list(order), dtype=torch.long)
        if sorted(order_t.tolist()) != list(range(features)):
            raise ValueError(f"order must be a permutation of range({features}), got {order_t.tolist()}")
        degrees_in = torch.empty(features, dtype=torch.long)
        degrees_in[order_t] = torch.arange(1, features + 1)
        self.register_buffer("degrees", degrees_in)
        self.order = order_t.tolist()
        # degree-0 hidden units see only the context; they carry it to the first feature's outputs
        low = 0 if context else min(1, features - 1)
        span = max(features - low, 1)
        layers: list[nn.Module] = []
        previous = torch.cat([degrees_in, torch.zeros(context, dtype=torch.long)])
        # prefix[l][i]: how many units of hidden layer l the feature at order position i sees (degree <= i)
        self._prefix: list[list[int]] = []
        for i, size in enumerate(hidden):
            degrees_h = torch.sort(torch.arange(size) % span + low).values
            mask = degrees_h[:, None] >= previous[None, :]
            if i == 0 and context:
                mask[:, features:] = True
            act = make_activation(activation)
            if isinstance(act, nn.ReLU):  # follows a linear layer, whose output autograd does not keep
                act.inplace = True
            layers += [MaskedLinear(mask), act]
            self._prefix.append(torch.searchsorted(degrees_h, torch.arange(features), right=True).tolist())
            previous = degrees_h
        # output row p·D + i (parameter-major) or i·P + p holds parameter p of feature i
        degrees_out = degrees_in.repeat(self.params) if self.param_major else degrees_in.repeat_interleave(self.params)
        layers.append(MaskedLinear(degrees_out[:, None] > previous[None, :]))
        self.net = nn.Sequential(*layers)
        self._relu = activation == "relu"  # one fused autograd node (see _MaskedReluMLP)

    @property
    def last(self) -> MaskedLinear:
        return self.net[-1]

    def _input(self, x: Tensor, context: Tensor | None) -> Tensor:
        if self.context:
            if context is None:
                raise ValueError("this MADE was built with a context input; pass context=")
            return torch.cat([x, context.expand(x.shape[0], -1)], dim=-1)
        return x

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x: (batch, D), context: (batch, c) -> (batch, D, P) (a view of (P, D, batch) memory if param_major)."""
        h = self._input(x, context)
        if self._relu:
            linears = [m for m in self.net if isinstance(m, MaskedLinear)]
            out = _MaskedReluMLP.apply(h, tuple(m.mask for m in linears), self.param_major,
                                       *[t for m in linears for t in (m.weight, m.bias)])
            if self.param_major:
                return out.view(self.params, self.features, x.shape[0]).permute(2, 1, 0)
            return out.view(x.shape[0], self.features, self.params)
        n = len(self.net) - 1
        for i, layer in enumerate(self.net):
            if i == n:
                break
            h = layer(h)
        last = self.last
        if not self.param_major:
            return last(h).view(x.shape[0], self.features, self.params)
        out = torch.addmm(last.bias.unsqueeze(1), last.masked_weight(), h.t())  # (P·D, batch)
        return out.view(self.params, self.features, x.shape[0]).permute(2, 1, 0)

    def masked_weights(self) -> list[tuple[Tensor, Tensor]]:
        """(W ⊙ M, b) of every linear layer, input to output (computed once for :meth:`feature_params`)."""
        return [(m.masked_weight(), m.bias) for m in self.net if isinstance(m, MaskedLinear)]

    def feature_params(self, x: Tensor, context: Tensor | None, position: int,
                       weights: list[tuple[Tensor, Tensor]] | None = None) -> Tensor:
        """The P parameters of the feature at order ``position`` only: (batch, P), equal to
        ``self(x, context)[:, self.order[position]]`` (a view of (P, batch) memory if param_major); hidden
        layers are evaluated on the prefix of units that feature sees (sorted degrees make it a prefix), so a
        sequential inverse costs about a third of D full passes."""
        weights = self.masked_weights() if weights is None else weights
        h = self._input(x, context)
        activations = [m for m in self.net if not isinstance(m, MaskedLinear)]
        width = h.shape[-1]
        for (weight, bias), act, prefix in zip(weights[:-1], activations, self._prefix):
            size = prefix[position]
            h = act(F.linear(h, weight[:size, :width], bias[:size]))
            width = size
        weight, bias = weights[-1]
        feature = self.order[position]
        if self.param_major:
            rows = slice(feature, None, self.features)
            return torch.addmm(bias[rows].unsqueeze(1), weight[rows, :width], h.t()).t()
        rows = slice(feature * self.params, (feature + 1) * self.params)
        return F.linear(h, weight[rows, :width], bias[rows])


class MaskedConv2d(nn.Conv2d):
    """y = conv2d(pad(x), W ⊙ M) + b with a fixed binary kernel mask M: (kh, kw), and an explicit (possibly
    asymmetric) zero padding (left, right, top, bottom), so that causal convolutions ("shifted" ones, whose
    kernel covers only the rows above or the columns left of an output) keep the input's size.

    The mask zeroes the weights and their gradients; it is a buffer, so it is saved with the weights.
    """

    def __init__(self, in_channels: int, out_channels: int, mask: Tensor, padding: Sequence[int], bias: bool = True):
        mask = torch.as_tensor(mask)
        if mask.dim() != 2:
            raise ValueError(f"a conv mask has shape (kh, kw), got {tuple(mask.shape)}")
        super().__init__(in_channels, out_channels, tuple(mask.shape), padding=0, bias=bias)
        self.pad = tuple(int(p) for p in padding)
        if len(self.pad) != 4:
            raise ValueError(f"padding is (left, right, top, bottom), got {self.pad}")
        self.register_buffer("mask", mask.to(torch.get_default_dtype())[None, None])

    def masked_weight(self) -> Tensor:
        """W ⊙ M: (out_channels, in_channels, kh, kw)."""
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, self.pad), self.masked_weight(), self.bias)
