"""What a fit shows while it runs: a bar over the epochs (ETA, the latest losses), a bar over each
epoch's batches, and one line per epoch and per notice, on stderr of the main process only.

Bars come from :mod:`hepgen.progress` (drawn only on a terminal); lines are shown unless ``quiet``
(by default, ``quiet=None``, only on a terminal too).
"""

from __future__ import annotations

import sys
from typing import Any

from hepgen.progress import on_terminal, progress_bar


class Console:
    """The bars and lines of one fit; ``quiet``: True, False or None (lines only on a terminal)."""

    def __init__(self, quiet: bool | None, is_main: bool):
        self.quiet, self.is_main = quiet, is_main
        self._epochs: Any = None

    @property
    def bars(self) -> bool:
        return bool(self.quiet) is False and self.is_main

    def say(self, message: str) -> None:
        """An epoch line or a notice on stderr: shown unless quiet; by default only on a terminal."""
        shown = (not self.quiet) if self.quiet is not None else on_terminal()
        if shown and self.is_main:
            if self._epochs is not None and not self._epochs.disable:
                self._epochs.write(message, file=sys.stderr)  # above the bars, not through them
            else:
                print(message, file=sys.stderr, flush=True)

    def start(self, epochs: int, done: int) -> None:
        """The bar over the epochs, ``done`` of them already (a resume)."""
        self._epochs = progress_bar(epochs, "fit", quiet=not self.bars, unit="epoch", initial=done)

    def batches(self, total: int, epoch: int, epochs: int) -> Any:
        """The bar over one epoch's batches (it disappears when the epoch ends)."""
        return progress_bar(total, f"epoch {epoch}/{epochs}", quiet=not self.bars, leave=False)

    def epoch(self, row: dict[str, float], epochs: int) -> None:
        """The line of a finished epoch, and the epoch bar moved on with the latest losses."""
        shown = "  ".join(f"{k} {v:.5g}" for k, v in row.items() if k not in ("epoch", "time", "lr"))
        self.say(f"epoch {row['epoch']}/{epochs}  {shown}  ({row['time']:.1f}s)")
        if self._epochs is not None:
            self._epochs.update(1)
            self._epochs.set_postfix({k: f"{v:.4g}" for k, v in row.items()
                                      if k in ("train_loss", "val_loss", "monitor")})

    def close(self) -> None:
        if self._epochs is not None:
            self._epochs.close()
            self._epochs = None
