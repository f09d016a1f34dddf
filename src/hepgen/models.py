"""The base every model family extends, the name → class registry the CLI reads, and :func:`load`.

A model is a ``torch.nn.Module`` with scikit-learn habits: hyper-parameters in ``__init__`` stored
under the same attribute names (so :meth:`Model.get_config` can rebuild it), ``fit(...)`` returns
``self``, fitted state ends in ``_``, ``save(dir)`` and :func:`load`.

For the training engine a family supplies (see :class:`hepgen.train.protocol.Trainable`):

* ``players()`` — who is optimised: one :class:`Player` for likelihood / reconstruction models
  (the default), several for adversarial ones (critic and generator, classifier and adversary);
* ``player_step(player, batch)`` — named per-event losses, shape (batch,), for that player; the
  key ``"loss"`` is the objective (the engine takes its weighted mean and back-propagates it);
* optionally ``validation_step(batch)`` (default: every player's losses under ``no_grad``),
  ``on_fit_start(events)`` / ``on_epoch_start(epoch)`` / ``on_fit_end(events)`` (run on every process; the
  engine saves after on_fit_end),
  ``streams()`` (further event streams, e.g. CycleGAN's domain B) and ``data_free = True`` (trained
  from a target it evaluates, with no input events).

A batch is a dict: ``x`` (batch, *event_shape) already preprocessed (a dict of such arrays for
multi-array events), ``w`` (batch,) per-event weights, ``context`` (batch, context) preprocessed when
the model is conditional, and ``streams`` ({name: {"x", "w", ...}}) when the model has further streams.

Names: every class that the CLI can fit states ``cli_name`` (short, kebab-case: ``conv-vae``,
``wgan-gp``) and is added to :data:`REGISTRY` (:mod:`hepgen.registry`, re-exported here) by the
:func:`register` decorator where it is defined. The package top level declares which module defines
each built-in name, so a family is imported when its name is first looked up: importing the engine or
this module imports no family, and this module names none.

Export: a family knows how it exports itself (``export_graph(what)``, ``export_default``);
:meth:`Model.export` hands it to the ONNX mechanics in :mod:`hepgen.export`.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.data.preprocess import Preprocessor, PreprocessorDict, PreprocessSpec, resolve_kinds
from hepgen.errors import CheckpointError, ConfigError, DataError
from hepgen.registry import REGISTRY, model_class, register
from hepgen.train.protocol import Player, Stream

__all__ = ["REGISTRY", "Model", "Player", "Stream", "load", "model_class", "register"]

def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: what a hyper-parameter looks like in config.yaml."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: old name -> new name of the label hooks a family may define
_OLD_LABEL_NAMES = {"target_columns": "label_columns", "target_keywords": "label_keywords",
                    "target_columns_for": "label_columns_for", "check_targets": "check_labels"}


class Model(nn.Module):
    """Base of every hepgen model.

    Args:
        event_shape: shape of one event, ``(features,)`` for tabular data, ``(C, H, W)`` for images, or
            ``{name: shape}`` for events made of several arrays (calorimeter layers, constituents + mask):
            then batches, preprocessing (one per array; ``preprocess`` a kind or ``{name: kind}``) and
            samples are dicts of arrays.
        context: size of the conditioning vector (0: unconditional).
        preprocess: per-feature preprocessing (see :mod:`hepgen.data.preprocess`).
    """

    cli_name: ClassVar[str] = "model"
    #: True for models trained without input events (their losses come from a target they evaluate)
    data_free: ClassVar[bool] = False

    def __init__(self, event_shape: Sequence[int] | Mapping[str, Sequence[int]], context: int = 0,
                 preprocess: PreprocessSpec = "standard"):
        super().__init__()
        self.context = int(context)
        self.preprocess = preprocess
        if isinstance(event_shape, Mapping):  # several arrays per event, one preprocessing each
            self.event_shape = {str(k): tuple(int(s) for s in v) for k, v in event_shape.items()}
            if not self.event_shape:
                raise ConfigError("a multi-array event needs at least one array")
            self.preprocessor = PreprocessorDict(self.event_shape, "none" if preprocess is None else preprocess)
        else:
            self.event_shape = tuple(int(s) for s in event_shape)
            n = self.event_shape[0] if len(self.event_shape) == 1 else 1
            default = "standard" if isinstance(preprocess, dict) else preprocess
            self.preprocessor = Preprocessor(self.event_shape, resolve_kinds(default, n))
        self.context_preprocessor = Preprocessor((self.context,), "standard") if self.context else None
        self.columns_: list[str] | None = None
        self.context_columns_: list[str] | None = None
        self.history_: list[dict[str, float]] = []

    # -- configuration ---------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor's hyper-parameters, read back from attributes of the same names."""
        params = {}
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[name] = _plain(getattr(self, name))
        return params

    @classmethod
    def hyperparameters(cls) -> dict[str, inspect.Parameter]:
        """Constructor parameters by name (the CLI turns them into flags and validates configs)."""
        return {n: p for n, p in inspect.signature(cls.__init__).parameters.items()
                if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Model:
        """Build the model for data of this event shape; tabular families take ``features``."""
        if len(event_shape) != 1:
            raise ConfigError(f"{cls.cli_name} models tabular events (batch, features); this data has events "
                              f"of shape {event_shape}")
        return cls(event_shape[0], context=context, **params)

    # -- devices and preprocessing ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.get_default_dtype()

    def _as_tensor(self, x: Tensor | np.ndarray) -> Tensor:
        return torch.as_tensor(x).to(device=self.device, dtype=self.dtype)

    def to_internal(self, x: Tensor | np.ndarray | Mapping[str, Any]) -> Tensor | dict[str, Tensor]:
        """Original units -> the preprocessed space the networks work in (a dict for multi-array events)."""
        if isinstance(self.event_shape, dict):
            if not isinstance(x, Mapping) or set(x) != set(self.event_shape):
                got = sorted(x) if isinstance(x, Mapping) else f"one array of shape {tuple(np.shape(x))}"
                raise ConfigError(f"{self.cli_name} takes events of arrays {sorted(self.event_shape)}, got {got}")
            out = {k: self._as_tensor(x[k]) for k in self.event_shape}
            for k, shape in self.event_shape.items():
                if tuple(out[k].shape[1:]) != shape:
                    raise ConfigError(f"{self.cli_name}: array {k!r} must have events of shape {shape}, got a batch "
                                      f"of shape {tuple(out[k].shape)}")
            return self.preprocessor(out)
        x = self._as_tensor(x)
        if tuple(x.shape[1:]) != self.event_shape:
            raise ConfigError(f"{self.cli_name} was built for events of shape {self.event_shape}, "
                              f"got a batch of shape {tuple(x.shape)}")
        return self.preprocessor(x)

    def to_external(self, u: Tensor) -> Tensor:
        """Preprocessed space -> original units."""
        return self.preprocessor.inverse(u)

    def context_to_internal(self, context: Tensor | np.ndarray | None, batch: int | None = None) -> Tensor | None:
        """Preprocess a context (batch, c) or a single row (c,) / (1, c), broadcast to ``batch`` rows."""
        if not self.context:
            if context is not None:
                raise ConfigError(f"{self.cli_name} was built without a context; do not pass context=")
            return None
        if context is None:
            raise ConfigError(f"{self.cli_name} is conditional on a context of size {self.context}; pass context=")
        c = self._as_tensor(context)
        c = c.reshape(1, -1) if c.dim() == 1 else c
        if c.shape[-1] != self.context:
            raise ConfigError(f"context has {c.shape[-1]} columns, the model expects {self.context}")
        if batch is not None and c.shape[0] == 1:
            c = c.expand(batch, -1)
        elif batch is not None and c.shape[0] != batch:
            raise ConfigError(f"context has {c.shape[0]} rows for {batch} events; give one row or one per event")
        return self.context_preprocessor(c)

    # -- the engine's hooks ------------------------------------------------------------------------
    def players(self) -> list[Player]:
        """Who is optimised; likelihood and reconstruction models have one player with every parameter."""
        return [Player("model", [p for p in self.parameters() if p.requires_grad])]

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named per-event losses (batch,) for ``player``; ``"loss"`` is the objective."""
        return self.training_losses(batch)

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Single-player families: named per-event losses (batch,) with the objective under ``"loss"``."""
        raise TypeError(f"{type(self).__name__} must implement training_losses or player_step")

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event validation losses (batch,); default: every player's losses, prefixed when several."""
        players = self.players()
        if len(players) == 1:
            return self.player_step(players[0].name, batch)
        out = {}
        for p in players:
            out.update({f"{p.name}_{k}": v for k, v in self.player_step(p.name, batch).items()})
        return out

    def streams(self) -> dict[str, Stream]:
        """Further event streams the engine batches beside the main events (default: none)."""
        return {}

    #: the family's defaults for :meth:`fit`'s engine options (a GAN keeps its last epoch: ``monitor=None``)
    fit_defaults: ClassVar[dict[str, Any]] = {}

    #: keyword arguments of ``fit`` that give the label columns as arrays, in the order of
    #: :meth:`label_columns` (a tagger's ``labels=``, ``nuisance=``)
    label_keywords: tuple[str, ...] = ()
    #: True for a family written with the old names of the label hooks (``target_columns`` ...): it reads
    #: ``batch["targets"]``, which the engine then hands over beside ``batch["labels"]``
    legacy_targets: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A family still defining the label hooks under their old names (before "targets" meant only
        the integrands and actions) keeps working: each old name also serves as the new one, with a warning."""
        super().__init_subclass__(**kwargs)
        old = [name for name in _OLD_LABEL_NAMES if name in vars(cls)]
        if old:
            warnings.warn(f"{cls.__name__} defines {', '.join(old)}: the training columns are now labels "
                          f"({', '.join(_OLD_LABEL_NAMES[n] for n in old)}, batch['labels'])", DeprecationWarning,
                          stacklevel=2)
            for name in old:
                if _OLD_LABEL_NAMES[name] not in vars(cls):
                    setattr(cls, _OLD_LABEL_NAMES[name], vars(cls)[name])
            cls.legacy_targets = True

    def target_columns(self) -> list[str]:
        """Deprecated name of :meth:`label_columns`."""
        warnings.warn("target_columns() is now label_columns()", DeprecationWarning, stacklevel=2)
        return self.label_columns()

    def check_targets(self, targets: np.ndarray, where: str) -> None:
        """Deprecated name of :meth:`check_labels` (the base check, for a family's ``super()`` call)."""
        Model.check_labels(self, targets, where)

    @classmethod
    def label_columns_for(cls, params: Mapping[str, Any]) -> list[str]:
        """The :meth:`label_columns` a model built with ``params`` will declare (the CLI reads them
        from DATA before the model exists); default: none."""
        return []

    def label_columns(self) -> list[str]:
        """Columns of the training data that only training reads, beside the features (a tagger's
        label and nuisance): the engine removes them from the features and hands them over as
        ``batch["labels"]`` (batch, k), not preprocessed; a fitted model never takes them."""
        return []

    def check_labels(self, labels: np.ndarray, where: str) -> None:
        """Refuse bad training labels (N, k) with a DataError naming ``where``, the column and the row;
        default: every value finite."""
        bad = ~np.isfinite(labels)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            names = self.label_columns()
            name = names[col] if col < len(names) else str(col)
            raise DataError(f"{where}: column '{name}' is NaN or infinite at row {row}")

    def on_fit_start(self, events: Any) -> None:
        """Called by the engine on every process after preprocessing is fitted, before the first epoch."""

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the engine on every process before each training epoch (1-based; after a resume, the
        epoch it continues with): epoch-based schedules (a pivot's pretraining phases) read it here."""

    def on_fit_end(self, events: Any) -> None:
        """Called by the engine on every process after the last epoch (best weights restored), before the
        main process saves the model: fitted state that needs the trained networks goes here."""

    def reset_parameters(self) -> None:
        """Re-draw every weight from the current torch RNG (``fit(seed=...)`` calls it after seeding)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    # -- fit / save ---------------------------------------------------------------------------------
    def fit(self, x: Any = None, val: Any = None, *, weights: Any = None, val_weights: Any = None,
            context: Any = None, val_context: Any = None, epochs: int = 20, batch_size: int = 256,
            lr: float = 1e-3, seed: int = 0, device: str = "auto", run_dir: str | Path | None = None,
            resume: bool = False, quiet: bool | None = None, streams: Mapping[str, Any] | None = None,
            columns: Sequence[str] | None = None, exclude: Sequence[str] = (), jagged_length: int | None = None,
            labels: Any = None, val_labels: Any = None, targets: Any = None, val_targets: Any = None,
            **options: Any) -> Model:
        """Train with the engine and return ``self``.

        ``x`` is a tensor or array (batch, *event_shape) or a data spec ``"file.h5:key"``; weights
        and contexts likewise (a spec or an array of matching length). ``val`` defaults to a seeded
        ``val_fraction`` (0.1) of ``x``. ``columns``/``exclude``/``jagged_length`` select the columns
        of a file ``x`` (and ``val``), as the CLI's flags of the same names do. ``streams`` gives the data of the model's further event
        streams by name (``{"b": y}`` or ``{"b": {"data": y, "weights": w}}``); a data-free model
        takes no ``x`` (None, the default) and ``steps_per_epoch``. ``labels``/``val_labels``: what only training reads
        (see :meth:`label_columns`; by default the declared columns of a file ``x``), column names or an
        (N, k) array — or, per column, the family's :attr:`label_keywords` (``labels=y, nuisance=z``);
        ``targets``/``val_targets`` are their deprecated spellings.
        Further ``options`` go to :class:`hepgen.train.Engine` (``patience``, ``monitor``, ``scheduler``,
        ``clip_grad``, ``precision``, ``stream``, ``diagnostics`` ...), over the family's
        :attr:`fit_defaults`.
        """
        from hepgen.data.io import DataSpec
        from hepgen.train.engine import Engine
        from hepgen.train.inputs import renamed_labels

        labels, val_labels = renamed_labels(labels, targets), renamed_labels(val_labels, val_targets, "val_")

        if columns is not None or exclude or jagged_length is not None:  # the same selection for x and val
            selection = {"columns": columns, "exclude": exclude, "jagged_length": jagged_length}
            if not isinstance(x, (str, os.PathLike)):
                raise ConfigError("columns=, exclude= and jagged_length= select columns of a file; x is an array")
            x = DataSpec.parse(x, **selection)
            val = DataSpec.parse(val, **selection) if isinstance(val, (str, os.PathLike)) else val
        options = {**self.fit_defaults, **options}
        given = {k: options.pop(k) for k in self.label_keywords if k in options}
        # labels= is the per-column keyword of a family whose first column is named so (a tagger's class
        # labels, one per event) when it comes with the others or as one value per event
        if "labels" in self.label_keywords and labels is not None and (given or _one_per_event(labels)):
            given, labels = {"labels": labels, **given}, None
        if given:
            if labels is not None:
                raise ConfigError(f"{self.cli_name}.fit: give labels= or {', '.join(given)}=, not both")
            labels = self._stack_labels(given, len(x) if hasattr(x, "__len__") and not isinstance(
                x, (str, os.PathLike)) else None)
        unknown = sorted(set(options) - set(inspect.signature(Engine.__init__).parameters))
        if unknown:
            raise ConfigError(f"{self.cli_name}.fit got an unknown option {unknown[0]!r}"
                              + (f" (its per-column labels are {', '.join(self.label_keywords)}=)"
                                 if self.label_keywords else ""))
        engine = Engine(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                        run_dir=run_dir, resume=resume, quiet=quiet, **options)
        engine.fit(self, x, val=val, weights=weights, val_weights=val_weights, context=context,
                   val_context=val_context, streams=streams, labels=labels, val_labels=val_labels)
        return self

    def _stack_labels(self, given: dict[str, Any], n: int | None) -> np.ndarray:
        """(N, k) labels from per-column keyword arrays (``labels=``, ``nuisance=``), all of them needed."""
        missing = [k for k in self.label_keywords[:len(self.label_columns())] if k not in given]
        if missing:
            raise ConfigError(f"{self.cli_name}.fit: give {missing[0]}= (one value per event) beside "
                              f"{', '.join(given)}=")
        arrays = [np.asarray(given[k], dtype=np.float64).reshape(-1) for k in self.label_keywords if k in given]
        lengths = {len(a) for a in arrays} | ({n} if n is not None else set())
        if len(lengths) != 1:
            raise DataError(f"{self.cli_name}.fit: {n} events but " + ", ".join(
                f"{len(a)} {k}" for k, a in zip(given, arrays)) + " values; one per event")
        return np.stack(arrays, axis=1)

    def save(self, run_dir: str | Path) -> Path:
        """Write ``config.yaml`` and ``model.pt`` into ``run_dir`` (atomically); returns the directory."""
        from hepgen.train.rundir import RunDir

        run = RunDir(run_dir)
        run.check_writable()
        return run.save_model(self)

    def extra_state(self) -> dict[str, Any]:
        """Fitted non-tensor state written to config.yaml (feature names and family extras)."""
        return {"columns": self.columns_, "context_columns": self.context_columns_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.columns_ = state.get("columns")
        self.context_columns_ = state.get("context_columns")

    def score(self, x: Tensor | np.ndarray, context: Tensor | np.ndarray | None = None) -> Tensor:
        """Anomaly score per event (batch,): higher means less like the training data."""
        raise ConfigError(f"{self.cli_name} gives no per-event score")

    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """What ``hepgen score`` writes per event: at least ``score``; density models add ``log_prob``."""
        return {"score": self.score(x, context)}

    #: what :meth:`export` writes unless told (``score`` where a family's use is the per-event score)
    export_default: ClassVar[str] = "sample"

    def export(self, path: str | Path, what: str | None = None, opset: int = 17, check: bool = True) -> Any:
        """Write the model as an ONNX graph (``sample``, ``score`` or ``log_prob``, preprocessing folded in);
        see :func:`hepgen.export.export`. Returns its :class:`~hepgen.export.ExportResult`.

        The graph is the family's own ``export_graph(what)``; a family without one is refused."""
        from hepgen.export import export  # the ONNX mechanics, which know no family (onnx is imported there)

        return export(self, path, what=what, opset=opset, check=check)


def _one_per_event(value: Any) -> bool:
    """An array of one value per event (not column names, not an (N, k) array of several columns)."""
    if isinstance(value, (str, os.PathLike)) or (isinstance(value, (list, tuple)) and value
                                                  and all(isinstance(v, str) for v in value)):
        return False
    return np.ndim(value) == 1


def refuse_several_arrays(name: str, event_shape: Any) -> None:
    """``from_data`` of a family of one array per event (an image model): events of several arrays (an HDF5 group
    of datasets, e.g. a calorimeter's layers) are refused naming them (their names were read as image sides, and
    two or three arrays passed the (C, H, W) check only to fail with "invalid literal for int()")."""
    if isinstance(event_shape, Mapping):
        arrays = ", ".join(f"{k} {tuple(int(s) for s in v)}" for k, v in event_shape.items())
        raise ConfigError(f"{name} models one array per event; this data holds several per event ({arrays}): name "
                          f"one of them in the key, e.g. FILE:GROUP/{next(iter(event_shape))}")


def resolve_run(run_dir: str | Path) -> Path:
    """The run directory ``run_dir``, or a model shipped with hepgen for ``pretrained:NAME`` (:mod:`hepgen.pretrained`)."""
    from hepgen.pretrained import resolve

    return resolve(run_dir)


def load(run_dir: str | Path, device: str | torch.device = "cpu", **user_code: Any) -> Model:
    """Rebuild the model saved in ``run_dir`` (or shipped with hepgen: ``"pretrained:NAME"``), ready to ``sample``,
    ``log_prob``, ``encode`` or ``score``.

    ``user_code``: a run trained on the user's own code (``integrand=``, ``matrix_element=``, ``target=``: a
    FILE.py:NAME path or the function) needs it given again; a run never imports code on its own, and a file
    whose sha256 differs from the recorded one is refused (:meth:`hepgen.train.rundir.RunDir.check_user_code`)."""
    from hepgen.train.rundir import RunDir

    run = RunDir(resolve_run(run_dir))
    if not run.path.exists():
        raise CheckpointError(f"run directory {run.path} does not exist")
    config = run.read_config()
    run.check_user_code(config, user_code)
    try:
        cls = model_class(config["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{run.config_path}: {exc}") from None
    try:
        # building the modules draws their (discarded) initial weights: on a fork, so that loading a model leaves
        # the caller's torch RNG as it was (library calls never touch the global RNG)
        with torch.random.fork_rng(devices=[]):
            model = cls(**{**config["params"], **user_code})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{run.config_path} does not fit model {config['model']!r}: {exc}") from None
    try:
        model.load_state_dict(run.load_model_state(config["model"]))
    except RuntimeError as exc:
        raise CheckpointError(f"{run.model_path} does not match its config.yaml: {exc}") from None
    model.load_extra_state(config.get("fitted") or {})
    model.eval()
    return model.to(device)
