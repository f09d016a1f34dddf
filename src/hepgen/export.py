"""Export a trained model to ONNX, for experiment software (onnxruntime in C++/Python, TMVA SOFIE, Triton).

Each export is one graph of plain tensor operations with the model's preprocessing T (and the context
preprocessing T_c) folded in, so the file takes and returns events in the original units of the data:

    sample     GAN              z ~ N(0, I) (batch, latent) [, c]  ->  x = T⁻¹(G(z, T_c(c)))
               flow             z ~ N(0, I) (batch, D) [, c]       ->  x = T⁻¹(f⁻¹(z; T_c(c))),
                                log p(x|c) = log p_z(z) − log|det ∂f⁻¹/∂z| + log|det ∂T/∂x|
               gaussian         z ~ N(0, I) (batch, D)             ->  x = T⁻¹(μ + L z),  log p(x)
               autoencoder      z ~ N(0, I) (batch, latent) [, c]  ->  x = T⁻¹(g(m + S z, T_c(c)))   (S Sᵀ the
                                latent Gaussian fitted to the training codes)
               VAE              z ~ N(0, I) (batch, latent) [, c]  ->  x = T⁻¹(E[u | z])           (decoder mean)
    log_prob   flow, gaussian   x (batch, D) [, c]  ->  log p(x|c) = log p_z(f(T(x); c̃)) + log|det ∂f/∂u| + log|det ∂T/∂x|
    score      what ``hepgen score`` writes per event:
               flow, gaussian   log_prob and score = −log_prob
               autoencoder      score = (1/D) Σ_d (g(f(u))_d − u_d)² and score_per_feature, u = T(x)
               GAN              score = −D(T(x), c̃)
               CycleGAN         score = −D_A(T(a)), translated = T_B⁻¹(G(T(a))), cycle_error = mean |F(G(u)) − u|

The batch axis is dynamic. Samplers take their noise as an input (draw it with the generator of your
framework), so the same z gives the same events as ``model.sample`` under the same torch seed.
Autoregressive inverses (MAF and autoregressive-NSF sampling, IAF density) export as their D
sequential passes per layer, unrolled: the graph grows with D and runs as fast as the torch loop.
Refused, with a :class:`~hepgen.errors.ConfigError` naming the model and the reason, and nothing
written: densities of models that have none (GANs, autoencoders), the VAE's −ELBO / IWAE (Monte-Carlo
estimates over posterior samples), CycleGAN sampling (it translates events), and any layer whose
operations the chosen opset lacks (e.g. :class:`~hepgen.flows.transforms.LULinear`'s triangular solve).

The graph is traced by the TorchScript-based exporter (``torch.onnx.export(dynamo=False)``, which
needs no onnxscript), checked with ``onnx.checker`` and, when onnxruntime is installed, run once on a
batch and compared with the torch model before anything is written. The opset, the model, the inputs,
outputs, units and feature names are stored in the file's ``metadata_props``. Needs ``pip install
'hepgen[onnx]'``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen._version import __version__
from hepgen.errors import ConfigError
from hepgen.files import atomic_path, writable_location
from hepgen.flows.distributions import DiagonalGaussian, StandardNormal

#: what an export computes
WHATS = ("sample", "score", "log_prob")
#: the opset written unless asked otherwise
DEFAULT_OPSET = 17
#: the opsets the TorchScript-based exporter of torch writes (11 is the oldest with every op used here)
MIN_OPSET, MAX_OPSET = 11, 20
#: events traced and then checked with onnxruntime (different sizes: the batch axis must be dynamic)
TRACE_ROWS, CHECK_ROWS = 3, 64
#: max |onnx − torch| / max(1, max |torch|) accepted by the check at export time
CHECK_TOLERANCE = 1e-3

__all__ = ["DEFAULT_OPSET", "WHATS", "ExportResult", "Port", "default_what", "export", "export_graph"]


@dataclass(frozen=True)
class Port:
    """One input or output of the graph: its name, the shape of one event's slice and what it holds."""

    name: str
    shape: tuple[int, ...]
    doc: str

    def describe(self) -> str:
        dims = ", ".join(["batch", *map(str, self.shape)])
        return f"{self.name} ({dims}) {self.doc}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": ["batch", *self.shape], "doc": self.doc}


@dataclass
class ExportGraph:
    """A pure-tensor module ``forward(*inputs) -> tuple(outputs)`` with named, documented ports."""

    module: nn.Module
    inputs: list[Port]
    outputs: list[Port]
    what: str
    model_name: str


@dataclass
class ExportResult:
    """What :func:`export` wrote."""

    path: Path
    model: str
    what: str
    opset: int
    inputs: list[Port]
    outputs: list[Port]
    #: max |onnxruntime − torch| / max(1, max |torch|) on a check batch (None: onnxruntime not installed)
    check_error: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        checked = ("not checked (onnxruntime is not installed)" if self.check_error is None
                   else f"onnxruntime agrees with torch to {self.check_error:.1e} (relative)")
        return (f"wrote {self.path} (ONNX opset {self.opset}): {self.model} {self.what}; "
                f"inputs: {'; '.join(p.describe() for p in self.inputs)}; "
                f"outputs: {'; '.join(p.describe() for p in self.outputs)}; {checked}")


# -- the graphs ------------------------------------------------------------------------------------------
class _Context(nn.Module):
    """c (batch, k) in original units -> T_c(c), or None for an unconditional model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.pre = model.context_preprocessor if getattr(model, "context", 0) else None

    def forward(self, c: Tensor | None) -> Tensor | None:
        return None if self.pre is None else self.pre(c)


class _Graph(nn.Module):
    """Base of the wrappers: ``model`` is held so its parameters and buffers become the graph's constants."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.ctx = _Context(model)


class _FlowSample(_Graph):
    """z (batch, D) standard normal [, c] -> (x (batch, D), log p(x|c) (batch,)), original units."""

    def forward(self, eps: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        m = self.model
        base = m.base
        if isinstance(base, DiagonalGaussian):  # z = μ + σ ε
            z = base.loc + torch.exp(base.log_scale) * eps
        else:
            z = eps
        u, ladj_inv = m.transform.inverse(z, self.ctx(c))
        x = m.preprocessor.inverse(u)
        return x, base.log_prob(z) - ladj_inv + m.preprocessor.log_abs_det_jacobian(x)


class _FlowLogProb(_Graph):
    """x (batch, D) [, c] -> log p(x|c) (batch,) in original units (preprocessing Jacobian included)."""

    def __init__(self, model: nn.Module, with_score: bool):
        super().__init__(model)
        self.with_score = with_score

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        m = self.model
        lp = m.log_prob_internal(m.preprocessor(x), self.ctx(c)) + m.preprocessor.log_abs_det_jacobian(x)
        return (lp, -lp) if self.with_score else (lp,)


class _GaussianSample(_Graph):
    """z (batch, D) standard normal -> (x = T⁻¹(μ + L z), log p(x)), original units.

    L and L⁻¹ are constants of the graph, computed once in torch (ONNX has neither ``diag_embed`` nor a
    triangular solve, and both are fixed after training): call :meth:`freeze` before tracing.
    """

    def freeze(self) -> None:
        tril = self.model.scale_tril().detach()
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


class _GaussianLogProb(_GaussianSample):
    """x (batch, D) -> log p(x) [, score = −log p(x)] in original units."""

    def __init__(self, model: nn.Module, with_score: bool):
        super().__init__(model)
        self.with_score = with_score

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:  # type: ignore[override]
        m = self.model
        lp = self._log_prob_u(m.preprocessor(x)) + m.preprocessor.log_abs_det_jacobian(x)
        return (lp, -lp) if self.with_score else (lp,)


class _GeneratorSample(_Graph):
    """z (batch, latent) standard normal [, c] -> x = T⁻¹(G(z, T_c(c))) (batch, *event_shape)."""

    def __init__(self, model: nn.Module, generator: nn.Module):
        super().__init__(model)
        self.generator = generator

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        return (self.model.preprocessor.inverse(self.generator(z, self.ctx(c))),)


class _CriticScore(_Graph):
    """x [, c] -> score = −D(T(x), T_c(c)) (batch,)."""

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        return (-self.model.critic(self.model.preprocessor(x), self.ctx(c)),)


class _CycleScore(_Graph):
    """a (batch, D_A) -> score −D_A(T(a)), translated T_B⁻¹(G(T(a))), cycle_error mean_d |F(G(u)) − u|."""

    def __init__(self, model: nn.Module, generator: nn.Module):
        super().__init__(model)
        self.generator = generator

    def forward(self, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        u = m.preprocessor(a)
        b = self.generator["ab"](u)
        cycle = (self.generator["ba"](b) - u).abs().mean(1)
        return -m.critic["a"](u), m.preprocessor_b.inverse(b), cycle


class _AEScore(_Graph):
    """x [, c] -> (score (batch,), score_per_feature (batch, *event_shape)): squared errors in u = T(x)."""

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        m = self.model
        u, cc = m.preprocessor(x), self.ctx(c)
        per = (m._decoded(m._code(u, cc), cc) - u).square()
        return per.reshape(per.shape[0], -1).mean(dim=1), per


class _AESample(_Graph):
    """z (batch, latent) standard normal [, c] -> x = T⁻¹(g(m + S z, T_c(c))), S the fitted latent Cholesky factor."""

    def forward(self, eps: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        m = self.model
        z = m.latent_mean_ + eps @ m.latent_scale_tril_.T
        return (m.preprocessor.inverse(m._decoded(z, self.ctx(c))),)


class _VAESample(_Graph):
    """z (batch, latent) ~ N(0, I) [, c] -> the decoder mean x = T⁻¹(E[u | z]) (``model.sample(n, mean=True)``)."""

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        m = self.model
        return (m.preprocessor.inverse(m._decoded(z, self.ctx(c))),)


# -- choosing the graph ------------------------------------------------------------------------------------
def _kind(model: nn.Module) -> str:
    """The family of ``model`` as export sees it: flow, gaussian, gan, cyclegan, ae or vae."""
    from hepgen.autoencoders import VAE, Autoencoder, ConvAutoencoder, ConvVAE
    from hepgen.flows.flow import FlowModel
    from hepgen.gans.adversarial import Adversarial
    from hepgen.gans.cyclegan import CycleGAN
    from hepgen.gaussian import Gaussian

    for kind, classes in (("flow", (FlowModel,)), ("gaussian", (Gaussian,)), ("cyclegan", (CycleGAN,)),
                          ("gan", (Adversarial,)), ("ae", (Autoencoder, ConvAutoencoder)), ("vae", (VAE, ConvVAE))):
        if isinstance(model, classes):
            return kind
    return "unknown"


def _name(model: nn.Module) -> str:
    return getattr(model, "cli_name", type(model).__name__)


def default_what(model: nn.Module) -> str:
    """What ``export`` writes when not told: samplers for generative models, ``score`` for autoencoders and
    CycleGAN (their use is the per-event score or translation)."""
    return "score" if _kind(model) in ("ae", "cyclegan") else "sample"


def _refuse(model: nn.Module, what: str, reason: str) -> ConfigError:
    return ConfigError(f"cannot export {_name(model)} ({type(model).__name__}) --what {what}: {reason}")


def _units(model: nn.Module) -> str:
    columns = getattr(model, "columns_", None)
    return f"original units [{', '.join(columns)}]" if columns else "original units"


def export_graph(model: nn.Module, what: str | None = None) -> ExportGraph:
    """The pure-tensor module and named ports that :func:`export` traces for ``model`` and ``what``.

    Raises ConfigError where the model cannot be exported that way (the message names model and reason).
    """
    what = default_what(model) if what is None else what
    if what not in WHATS:
        raise ConfigError(f"--what must be one of {', '.join(WHATS)}, got {what!r}")
    if isinstance(getattr(model, "event_shape", None), dict):
        raise _refuse(model, what, f"its events are made of several arrays ({', '.join(model.event_shape)}); "
                                   "export writes models of one array per event")
    kind = _kind(model)
    name = _name(model)
    shape = tuple(getattr(model, "event_shape", ()))
    k = int(getattr(model, "context", 0) or 0)
    ctx_cols = getattr(model, "context_columns_", None)
    context = ([Port("context", (k,), "context in original units" + (f" [{', '.join(ctx_cols)}]" if ctx_cols else ""))]
               if k else [])
    x_in = Port("x", shape, f"events in {_units(model)}")
    x_out = Port("x", shape, f"events in {_units(model)}")
    lp = Port("log_prob", (), "log p(x) in the original units (preprocessing Jacobian included)")

    if kind == "unknown":
        raise _refuse(model, what, "export knows the hepgen families (flows, gaussian, GANs, CycleGAN, "
                                   "autoencoders, VAEs), not this class")
    if kind in ("flow", "gaussian"):
        features = int(shape[0])
        if what == "sample":
            if kind == "gaussian":
                module: _Graph = _GaussianSample(model)
            else:
                base = model.base
                if not isinstance(base, StandardNormal):  # DiagonalGaussian derives from it
                    raise _refuse(model, what, f"its base distribution {type(base).__name__} is not a known function "
                                               "of N(0, I) noise (StandardNormal and DiagonalGaussian are)")
                module = _FlowSample(model)
            noise = Port("z", (features,), "standard normal N(0, I) noise")
            inputs, outputs = [noise, *context], [x_out, lp]
        else:
            with_score = what == "score"
            module = _GaussianLogProb(model, with_score) if kind == "gaussian" else _FlowLogProb(model, with_score)
            inputs = [x_in, *context]
            outputs = [lp, Port("score", (), "−log p(x)")] if with_score else [lp]
        if isinstance(module, _GaussianSample):
            module.freeze()
    elif kind == "gan":
        if what == "log_prob":
            raise _refuse(model, what, "a GAN is an implicit model: it draws events but has no density; export "
                                       "--what sample (the generator) or --what score (−critic)")
        if what == "sample":
            generator = model.generator_ema if getattr(model, "generator_ema", None) is not None else model.generator
            module = _GeneratorSample(model, generator)
            inputs = [Port("z", (int(model.latent),), "standard normal N(0, I) latent noise"), *context]
            outputs = [x_out]
        else:
            module, inputs, outputs = _CriticScore(model), [x_in, *context], [Port("score", (), "−D(x), the critic")]
    elif kind == "cyclegan":
        if what != "score":
            raise _refuse(model, what, "CycleGAN translates events rather than drawing them and has no density; "
                                       "--what score exports the translation A -> B with −D_A(a) and the cycle error")
        generator = model.generator_ema if getattr(model, "generator_ema", None) is not None else model.generator
        module = _CycleScore(model, generator)
        inputs = [Port("x", shape, "domain A events in original units")]
        outputs = [Port("score", (), "−D_A(x)"),
                   Port("translated", (int(model.features_b),), "G(x): the events translated to domain B, its units"),
                   Port("cycle_error", (), "mean |F(G(u)) − u| in domain A's preprocessed units")]
    elif kind == "ae":
        if what == "log_prob":
            raise _refuse(model, what, "an autoencoder has no density; export --what score (reconstruction error)")
        if what == "score":
            module, inputs = _AEScore(model), [x_in, *context]
            outputs = [Port("score", (), "reconstruction error (1/D) Σ (g(f(u)) − u)², u = T(x)"),
                       Port("score_per_feature", shape, "squared reconstruction error per value, preprocessed units")]
        else:
            if not bool(model.latent_fitted_):
                raise _refuse(model, what, "it samples from a Gaussian fitted to its training codes, which this model "
                                           "does not have yet (train it with fit() or call fit_latent(x))")
            module = _AESample(model)
            inputs = [Port("z", (int(model.latent),), "standard normal N(0, I) noise (z = m + S·noise)"), *context]
            outputs = [x_out]
    else:  # vae
        if what != "sample":
            raise _refuse(model, what, "the VAE's −ELBO and importance-weighted log p(x) are Monte-Carlo estimates "
                                       "over posterior samples, not one deterministic graph; export --what sample "
                                       "(the decoder) or score with 'hepgen score'")
        module = _VAESample(model)
        inputs = [Port("z", (int(model.latent),), "prior draws z ~ N(0, I)"), *context]
        outputs = [Port("x", shape, f"decoder mean E[x | z] in {_units(model)}")]
    return ExportGraph(module.eval(), inputs, outputs, what, name)


# -- tracing and writing -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _traceable(model: nn.Module) -> Iterator[None]:
    """Inference mode, and every MADE on its layer-by-layer path: the fused masked-ReLU network is one
    custom autograd node, which the TorchScript exporter cannot convert (same numbers either way)."""
    from hepgen.nn.masked import MADE

    was_training = model.training
    mades = [m for m in model.modules() if isinstance(m, MADE) and getattr(m, "_relu", False)]
    model.eval()  # GANs apply their pending weight clipping and EMA update here
    for m in mades:
        m._relu = False
    try:
        with torch.no_grad():
            yield
    finally:
        for m in mades:
            m._relu = True
        model.train(was_training)


def _example_inputs(graph: ExportGraph, model: nn.Module, rows: int, seed: int) -> list[Tensor]:
    """Inputs in their domains: noise N(0, I); events and contexts as T⁻¹ of N(0, I) draws (original units)."""
    g = torch.Generator().manual_seed(seed)
    dtype, device = model.dtype, model.device
    out = []
    for port in graph.inputs:
        draw = torch.randn(rows, *port.shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
        if port.name == "context":
            draw = model.context_preprocessor.inverse(draw)
        elif port.name == "x":
            draw = model.preprocessor.inverse(draw)
        out.append(draw)
    return out


def _onnx_bytes(graph: ExportGraph, model: nn.Module, opset: int) -> bytes:
    buffer = io.BytesIO()
    example = tuple(_example_inputs(graph, model, TRACE_ROWS, seed=0))
    names_in, names_out = [p.name for p in graph.inputs], [p.name for p in graph.outputs]
    dynamic = {n: {0: "batch"} for n in names_in + names_out}
    try:  # the exporter prints its whole IR graph to stdout when it fails: keep that out of the user's terminal
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(graph.module, example, buffer, dynamo=False, opset_version=opset, input_names=names_in,
                              output_names=names_out, dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - the exporter's errors have no common type; each means "this graph cannot be written"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot export {graph.model_name} ({type(model).__name__}) --what {graph.what} to ONNX "
                          f"opset {opset}: the exporter stopped with {type(exc).__name__}: {first} (a layer of this model uses "
                          "an operation ONNX lacks; the ready-made flows, GANs and autoencoders export)") from None
    return buffer.getvalue()


def _check_with_onnxruntime(data: bytes, graph: ExportGraph, model: nn.Module) -> float | None:
    """Run the graph on a fresh batch (another size than traced) in onnxruntime and in torch; the relative error."""
    try:
        import onnxruntime
    except ImportError:
        return None
    inputs = _example_inputs(graph, model, CHECK_ROWS, seed=1)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = {p.name: t.detach().cpu().numpy() for p, t in zip(graph.inputs, inputs)}
    got = session.run([p.name for p in graph.outputs], feed)
    expected = graph.module(*inputs)
    worst = 0.0
    for port, a, b in zip(graph.outputs, got, expected):
        b = b.detach().cpu().double().numpy()
        if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
            raise ConfigError(f"cannot export {graph.model_name} --what {graph.what}: onnxruntime returned output "
                              f"{port.name!r} of shape {a.shape} (torch: {b.shape}) or non-finite values")
        finite = np.isfinite(b)
        scale = max(1.0, float(np.abs(b[finite]).max(initial=0.0)))
        worst = max(worst, float(np.abs(a[finite] - b[finite]).max(initial=0.0)) / scale)
    if worst > CHECK_TOLERANCE:
        raise ConfigError(f"cannot export {graph.model_name} --what {graph.what}: the ONNX graph differs from the "
                          f"torch model by {worst:.2g} (relative) on a check batch; nothing was written")
    return worst


def _metadata(model: nn.Module, graph: ExportGraph, opset: int) -> dict[str, str]:
    pre = getattr(model, "preprocessor", None)
    return {
        "hepgen_version": __version__,
        "model": graph.model_name,
        "model_class": type(model).__name__,
        "what": graph.what,
        "opset": str(opset),
        "inputs": json.dumps([p.as_dict() for p in graph.inputs]),
        "outputs": json.dumps([p.as_dict() for p in graph.outputs]),
        "columns": json.dumps(getattr(model, "columns_", None)),
        "context_columns": json.dumps(getattr(model, "context_columns_", None)),
        "preprocess": json.dumps(list(pre.kinds) if pre is not None else None),
        "units": "inputs and outputs in the original units of the training data (preprocessing folded in)",
    }


def export(model: nn.Module, path: str | Path, what: str | None = None, opset: int = DEFAULT_OPSET,
           check: bool = True) -> ExportResult:
    """Write ``model`` as an ONNX graph to ``path`` (atomically) and describe what was written.

    Args:
        model: a trained hepgen model (``hepgen.load(run)``).
        path: the ``.onnx`` file to write.
        what: ``sample``, ``score`` or ``log_prob`` (see the module docstring; default :func:`default_what`).
        opset: the ONNX opset, 11 to 20 (default 17).
        check: run the graph once in onnxruntime (when installed) and refuse if it differs from torch.

    Every check runs before the file is written; on any error nothing is written.
    """
    try:
        import onnx
    except ImportError:
        raise ConfigError("exporting to ONNX needs the onnx package: pip install 'hepgen[onnx]'") from None
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise ConfigError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET} (the opsets torch's exporter "
                          f"writes), got {opset!r}")
    opset = int(opset)
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"-o {path} is a directory; give the .onnx file to write")
    problem = writable_location(path)
    if problem:
        raise ConfigError(f"cannot write {path}: {problem}")
    graph = export_graph(model, what)
    with _traceable(model):
        data = _onnx_bytes(graph, model, opset)
        proto = onnx.load_from_string(data)
        meta = _metadata(model, graph, opset)
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name, proto.producer_version = "hepgen", __version__
        proto.doc_string = (f"hepgen {graph.model_name} --what {graph.what}: inputs "
                            f"{'; '.join(p.describe() for p in graph.inputs)} -> outputs "
                            f"{'; '.join(p.describe() for p in graph.outputs)}")
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise ConfigError(f"cannot export {graph.model_name} --what {graph.what}: the ONNX graph does not "
                              f"validate: {str(exc).splitlines()[0]}") from None
        data = proto.SerializeToString()
        error = _check_with_onnxruntime(data, graph, model) if check else None
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return ExportResult(path, graph.model_name, graph.what, opset, graph.inputs, graph.outputs, error, meta)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` hepgen wrote into an exported file (model, what, opset, inputs, outputs ...)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
