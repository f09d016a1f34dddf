"""The base every model family extends, and the name → class registry the CLI reads.

A model is a ``torch.nn.Module`` with scikit-learn habits: hyper-parameters in ``__init__`` stored
under the same attribute names (so :meth:`Model.get_config` can rebuild it), ``fit(...)`` returns
``self``, fitted state ends in ``_``, ``save(dir)`` and :func:`hepgen.load`.

For the training engine a family supplies:

* ``players()`` — who is optimised: one :class:`Player` for likelihood / reconstruction models
  (the default), several for adversarial ones (critic and generator, classifier and adversary);
* ``player_step(player, batch)`` — named per-event losses, shape (batch,), for that player; the
  key ``"loss"`` is the objective (the engine takes its weighted mean and back-propagates it);
* optionally ``validation_step(batch)`` (default: every player's losses under ``no_grad``).

A batch is a dict: ``x`` (batch, *event_shape) already preprocessed, ``w`` (batch,) per-event
weights, and ``context`` (batch, context) preprocessed when the model is conditional.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.data.preprocess import Preprocessor, PreprocessSpec, resolve_kinds
from hepgen.errors import ConfigError

#: CLI name -> model class; filled by :func:`register`.
REGISTRY: dict[str, type[Model]] = {}

#: Models whose families arrive in later issues: the CLI refuses them with this explanation (name -> family).
PLANNED: dict[str, str] = {}


def kebab(name: str) -> str:
    """``ConvVAE`` -> ``conv-vae``, ``WGANGP`` -> ``wgangp``: the CLI spelling of a class name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def register(cls: type[Model] | None = None, *, name: str | None = None):
    """Class decorator adding a model to :data:`REGISTRY` under its kebab-case name."""

    def wrap(c: type[Model]) -> type[Model]:
        c.cli_name = name or kebab(c.__name__)
        REGISTRY[c.cli_name] = c
        return c

    return wrap(cls) if cls is not None else wrap


def model_class(name: str) -> type[Model]:
    """Look a model up by CLI name; unknown or not-yet-available names raise a clear ConfigError."""
    import hepgen  # noqa: F401  (importing the package registers every family)

    if name in REGISTRY:
        return REGISTRY[name]
    if name in PLANNED:
        raise ConfigError(
            f"model {name!r} belongs to the {PLANNED[name]} family, which this version of hepgen does not "
            f"provide yet; available models: {', '.join(sorted(REGISTRY))}"
        )
    import difflib

    near = difflib.get_close_matches(name, list(REGISTRY) + list(PLANNED), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(f"unknown model {name!r}{hint}; available models: {', '.join(sorted(REGISTRY))}")


@dataclass
class Player:
    """One optimised party of a model: its parameters and how often it steps.

    ``every=k`` makes the player step on every k-th batch (a generator with k critic steps per
    generator step has ``every=k`` while its critic has ``every=1``). ``lr=None`` uses the fit lr.
    """

    name: str
    parameters: list[nn.Parameter]
    lr: float | None = None
    every: int = 1
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Model(nn.Module):
    """Base of every hepgen model.

    Args:
        event_shape: shape of one event, ``(features,)`` for tabular data, ``(C, H, W)`` for images.
        context: size of the conditioning vector (0: unconditional).
        preprocess: per-feature preprocessing (see :mod:`hepgen.data.preprocess`).
    """

    cli_name: ClassVar[str] = "model"
    #: what ``score`` returns: "log_prob" for density models, "anomaly" for reconstruction models
    score_kind: ClassVar[str] = "log_prob"

    def __init__(self, event_shape: Sequence[int], context: int = 0, preprocess: PreprocessSpec = "standard"):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        self.context = int(context)
        self.preprocess = preprocess
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
            value = getattr(self, name)
            params[name] = list(value) if isinstance(value, tuple) else value
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

    def _internal(self, x: Tensor | np.ndarray) -> Tensor:
        """Original units -> the preprocessed space the networks work in."""
        x = self._as_tensor(x)
        if tuple(x.shape[1:]) != self.event_shape:
            raise ConfigError(f"{self.cli_name} was built for events of shape {self.event_shape}, "
                              f"got a batch of shape {tuple(x.shape)}")
        return self.preprocessor(x)

    def _external(self, u: Tensor) -> Tensor:
        """Preprocessed space -> original units."""
        return self.preprocessor.inverse(u)

    def _internal_context(self, context: Tensor | np.ndarray | None, batch: int | None = None) -> Tensor | None:
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
        raise NotImplementedError(f"{type(self).__name__} must implement training_losses or player_step")

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event validation losses (batch,); default: every player's losses, prefixed when several."""
        players = self.players()
        if len(players) == 1:
            return self.player_step(players[0].name, batch)
        out = {}
        for p in players:
            out.update({f"{p.name}_{k}": v for k, v in self.player_step(p.name, batch).items()})
        return out

    def reset_parameters(self) -> None:
        """Re-draw every weight from the current torch RNG (``fit(seed=...)`` calls it after seeding)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    # -- fit / save ---------------------------------------------------------------------------------
    def fit(self, x: Any, val: Any = None, *, weights: Any = None, val_weights: Any = None,
            context: Any = None, val_context: Any = None, epochs: int = 20, batch_size: int = 256,
            lr: float = 1e-3, seed: int = 0, device: str = "auto", run_dir: str | Path | None = None,
            resume: bool = False, quiet: bool | None = None, **options: Any) -> Model:
        """Train with the engine and return ``self``.

        ``x`` is a tensor or array (batch, *event_shape) or a data spec ``"file.h5:key"``; weights
        and contexts likewise (a spec or an array of matching length). ``val`` defaults to a seeded
        ``val_fraction`` (0.1) of ``x``. Further ``options`` go to :class:`hepgen.train.Engine`
        (``patience``, ``monitor``, ``scheduler``, ``clip_grad``, ``precision``, ``stream`` ...).
        """
        from hepgen.train.engine import Engine

        engine = Engine(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                        run_dir=run_dir, resume=resume, quiet=quiet, **options)
        engine.fit(self, x, val=val, weights=weights, val_weights=val_weights, context=context,
                   val_context=val_context)
        return self

    def save(self, run_dir: str | Path) -> Path:
        """Write ``config.yaml`` and ``model.pt`` into ``run_dir`` (atomically); returns the directory."""
        from hepgen.train.checkpoint import save_model

        return save_model(self, run_dir)

    def extra_state(self) -> dict[str, Any]:
        """Fitted non-tensor state written to config.yaml (feature names and family extras)."""
        return {"columns": self.columns_, "context_columns": self.context_columns_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.columns_ = state.get("columns")
        self.context_columns_ = state.get("context_columns")

    def score(self, x: Tensor | np.ndarray, context: Tensor | np.ndarray | None = None) -> Tensor:
        """Anomaly score per event (batch,): higher means less like the training data."""
        raise NotImplementedError

    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """What ``hepgen score`` writes per event: at least ``score``; density models add ``log_prob``."""
        return {"score": self.score(x, context)}
