"""What the engine needs of a model: its players, their per-event losses, and optional hooks.

The engine knows no model family and does not import :mod:`hepgen.models`; it types what it trains
with :class:`Trainable`, which :class:`hepgen.models.Model` satisfies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@dataclass
class Player:
    """One optimised party of a model: its parameters and how often it steps.

    ``every=k`` makes the player step on every k-th batch (a generator with k critic steps per
    generator step has ``every=k`` while its critic has ``every=1``); ``every=0``: the player sits the
    epoch out (staged training: no step, its weights and optimiser state untouched; ``players()`` is read
    again after each ``on_epoch_start``). ``lr=None`` uses the fit lr.
    """

    name: str
    parameters: list[nn.Parameter]
    lr: float | None = None
    every: int = 1
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stream:
    """A further stream of events a model trains on besides the main one (CycleGAN's domain B,
    OmniFold's data against simulation, a pivot's nuisance labels).

    ``data``, ``weights``, ``context``, ``val``: as for the main events (arrays or ``path[:key]``
    specs; weights/context may name columns of ``data``). ``preprocessor``: the stream's own
    preprocessing, fitted by the engine on the stream's training events (None: none).
    ``event_shape``: checked against the data (None: not checked). ``missing``: the message when
    no data is given for the stream.
    In a batch the stream appears as ``batch["streams"][name] = {"x", "w"[, "context"]}``.
    """

    data: Any
    weights: Any = None
    context: Any = None
    val: Any = None
    preprocessor: nn.Module | None = None
    context_preprocessor: nn.Module | None = None
    event_shape: tuple[int, ...] | None = None
    #: what to tell a user who gave no data for this stream
    missing: str | None = None


@runtime_checkable
class Trainable(Protocol):
    """The engine's view of a model (hepgen.models.Model implements every member).

    Optional checks the engine calls when a model defines them, all before anything is trained or written:
    ``check_context(values (N, c), names, where)`` on the whole context, before the validation split so rows
    are the file's (e.g. a shower model's positive incident energies); ``check_events(values (n, *event_shape),
    first_row, where)`` chunk by chunk (e.g. a PixelCNN's non-negative intensities); ``check_fit(batch_size,
    device)`` on the settings (e.g. a data-free flow's memory estimate, or an integrand that is zero
    everywhere). Each raises a ConfigError or DataError naming the file, column and row, or the option.
    Optional after each epoch: ``epoch_metrics() -> {name: value}``, logged as ``val_<name>`` (a lattice flow's
    effective sample size on its own draws); ``higher_is_better``, names of logged quantities the engine
    maximises when one is the monitor; ``monitors() -> {name: f(model, val_events, n, seed) -> float}``, sample
    metrics of the model's own that ``monitor=name`` picks the best epoch by (lower is better; a shower model's
    high-level FPD or classifier AUC of n samples against the validation events).
    """

    cli_name: str
    event_shape: Any
    context: int
    preprocess: Any
    preprocessor: nn.Module
    context_preprocessor: nn.Module | None
    columns_: list[str] | None
    context_columns_: list[str] | None
    history_: list[dict[str, float]]
    #: True for a model trained without input events, from a target it evaluates (reverse KL ...)
    data_free: bool

    def players(self) -> list[Player]: ...

    def player_step(self, player: str, batch: dict[str, Any]) -> dict[str, Tensor]: ...

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Tensor]: ...

    def reset_parameters(self) -> None: ...

    def get_config(self) -> dict[str, Any]: ...

    def extra_state(self) -> dict[str, Any]: ...

    def streams(self) -> Mapping[str, Stream]: ...

    def label_columns(self) -> list[str]: ...

    def check_labels(self, labels: Any, where: str) -> None: ...

    def on_fit_start(self, events: Any) -> None: ...

    def on_fit_end(self, events: Any) -> None: ...

    def on_epoch_start(self, epoch: int) -> None: ...
