"""Export a trained model to ONNX, for experiment software (onnxruntime in C++/Python, TMVA SOFIE, Triton).

Each export is one graph of plain tensor operations with the model's preprocessing T (and the context
preprocessing T_c) folded in, so the file takes and returns events in the original units of the data.
The model knows what it exports: its ``export_graph(what)`` returns the module to trace and its named
ports (an :class:`ExportGraph`, built from :class:`GraphModule`, :class:`Port` and :func:`event_ports`),
its ``export_default`` says what is written when not told, and :func:`refusal` says why it cannot be.
This module holds only the mechanics: the checks every export shares, tracing, validation, the
onnxruntime cross-check, metadata and the atomic write. What the families write:

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
operations the chosen opset lacks (e.g. the triangular solve of the flows' LULinear layer).

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
from hepgen.files import atomic_path, silenced_stdout, writable_location

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

__all__ = ["DEFAULT_OPSET", "WHATS", "EventPorts", "ExportGraph", "ExportResult", "GraphModule", "Port", "default_what",
           "event_ports", "export", "export_graph", "read_metadata", "refusal"]


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
    #: set by :func:`export_graph`
    what: str = ""
    model_name: str = ""


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


# -- the vocabulary the families build their graphs with ------------------------------------------------------
class _Context(nn.Module):
    """c (batch, k) in original units -> T_c(c), or None for an unconditional model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.pre = model.context_preprocessor if getattr(model, "context", 0) else None

    def forward(self, c: Tensor | None) -> Tensor | None:
        return None if self.pre is None else self.pre(c)


class GraphModule(nn.Module):
    """Base of the modules the families trace: ``model`` is held so that its parameters and buffers become the
    graph's constants, and ``self.ctx(c)`` folds its context preprocessing in (T_c(c), or None)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.ctx = _Context(model)


def refusal(model: nn.Module, what: str, reason: str) -> ConfigError:
    """The error for a model that cannot be exported as ``what``, naming the model and the reason."""
    return ConfigError(f"cannot export {_name(model)} ({type(model).__name__}) --what {what}: {reason}")


@dataclass(frozen=True)
class EventPorts:
    """The ports most graphs share: events ``x`` in the original units, the context (none or one port) and
    ``log_prob``."""

    x: Port
    context: list[Port]
    log_prob: Port
    #: "original units [e, eta, m]": how the events' values are given (the training columns when known)
    units: str


def event_ports(model: nn.Module) -> EventPorts:
    """:class:`EventPorts` for ``model``, documented with its training columns and context columns."""
    columns = getattr(model, "columns_", None)
    units = f"original units [{', '.join(columns)}]" if columns else "original units"
    k = int(getattr(model, "context", 0) or 0)
    ctx_cols = getattr(model, "context_columns_", None)
    context = ([Port("context", (k,), "context in original units" + (f" [{', '.join(ctx_cols)}]" if ctx_cols else ""))]
               if k else [])
    return EventPorts(Port("x", tuple(getattr(model, "event_shape", ())), f"events in {units}"), context,
                      Port("log_prob", (), "log p(x) in the original units (preprocessing Jacobian included)"), units)


def _name(model: nn.Module) -> str:
    return getattr(model, "cli_name", type(model).__name__)


def default_what(model: nn.Module) -> str:
    """What ``export`` writes when not told: the model's ``export_default`` (samplers for generative models,
    ``score`` for autoencoders and CycleGAN, whose use is the per-event score or translation)."""
    return getattr(model, "export_default", "sample")


def export_graph(model: nn.Module, what: str | None = None) -> ExportGraph:
    """The pure-tensor module and named ports that :func:`export` traces for ``model`` and ``what``: the checks
    every export shares, then the model's own ``export_graph(what)``.

    Raises ConfigError where the model cannot be exported that way (the message names model and reason).
    """
    what = default_what(model) if what is None else what
    if what not in WHATS:
        raise ConfigError(f"--what must be one of {', '.join(WHATS)}, got {what!r}")
    if isinstance(getattr(model, "event_shape", None), dict):
        raise refusal(model, what, f"its events are made of several arrays ({', '.join(model.event_shape)}); "
                                   "export writes models of one array per event")
    build = getattr(model, "export_graph", None)
    if not callable(build):
        raise refusal(model, what, "export knows the hepgen families (flows, gaussian, GANs, CycleGAN, "
                                   "autoencoders, VAEs), not this class")
    graph = build(what)
    graph.what, graph.model_name = what, _name(model)
    graph.module.eval()
    return graph


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


def _folded(module: nn.Module) -> nn.Module:
    """``module``, or a copy of it with every parametrisation computed once into a plain tensor (spectral norm's
    weight / σ, as eval mode uses it): the same numbers, without σ's ``vdot``, which ONNX lacks. The model
    itself keeps its parametrisations (and power-iteration vectors) for further training."""
    import copy

    from torch.nn.utils import parametrize

    if not any(parametrize.is_parametrized(m) for m in module.modules()):
        return module
    module = copy.deepcopy(module)
    with torch.no_grad():
        for m in [m for m in module.modules() if parametrize.is_parametrized(m)]:
            values = {name: getattr(m, name).detach().clone() for name in m.parametrizations}
            # what parametrize.remove_parametrizations does, without deleting the properties from the
            # "Parametrized<Class>" class, which the copy shares with the model
            m.__class__ = type(m).__bases__[0]
            del m._modules["parametrizations"]
            for name, value in values.items():
                m.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return module


def _onnx_bytes(graph: ExportGraph, model: nn.Module, opset: int) -> bytes:
    buffer = io.BytesIO()
    example = tuple(_example_inputs(graph, model, TRACE_ROWS, seed=0))
    module = _folded(graph.module)
    names_in, names_out = [p.name for p in graph.inputs], [p.name for p in graph.outputs]
    dynamic = {n: {0: "batch"} for n in names_in + names_out}
    try:  # the exporter prints its whole IR graph to stdout (from C++) when it fails: keep that out of the terminal
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), silenced_stdout():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, buffer, dynamo=False, opset_version=opset, input_names=names_in,
                              output_names=names_out, dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - the exporter's errors have no common type; each means "this graph cannot be written"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = ("a layer of this model uses an operation ONNX lacks; the ready-made flows, GANs and autoencoders export"
               if isinstance(exc, torch.onnx.OnnxExporterError) else
               "the model's own export graph failed while it was traced, not a missing ONNX operation: a bug in "
               "hepgen, please report it")
        raise ConfigError(f"cannot export {graph.model_name} ({type(model).__name__}) --what {graph.what} to ONNX "
                          f"opset {opset}: the exporter stopped with {type(exc).__name__}: {first[:200]} ({why})") from None
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
