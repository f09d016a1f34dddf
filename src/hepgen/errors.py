"""The few exception types a hepgen user sees.

Every error raised on bad user input derives from :class:`HepgenError`; the CLI turns it into a
one-paragraph message on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations


class HepgenError(Exception):
    """Base class of every error caused by user input (data, configuration, checkpoints)."""


class DataError(HepgenError, ValueError):
    """Bad input data: missing file or key, NaN/inf, wrong shape, non-numeric columns, corrupt file.

    The message names the file, the key/column and, where it applies, the first bad row.
    """


class ConfigError(HepgenError, ValueError):
    """Bad configuration: unknown model, unknown or ill-typed hyper-parameter."""


class CheckpointError(HepgenError):
    """A run directory or ``model.pt`` that is missing, corrupted or not written by hepgen."""


class TrainingError(HepgenError, RuntimeError):
    """Training cannot go on, e.g. a loss became NaN/inf (the message names epoch, step and loss)."""


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (``kill``, a batch system's time limit).

    Raised by the handler :func:`hepgen.files.sigterm_raises` installs, so that ``finally`` blocks run and
    no temporary file is left behind, as after Ctrl-C (it is a KeyboardInterrupt for code that cleans up on
    one); the CLI then exits with 143 (128 + SIGTERM).
    """
