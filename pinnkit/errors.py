"""One exception family for everything pinnkit reports to a user."""

from __future__ import annotations

__all__ = ["PinnkitError", "SpecError", "GeometryError", "TrainingError", "OptionsError",
           "ReferenceSolverError", "UnsupportedSpecError", "WriteError", "TrainingInterrupted"]


class PinnkitError(Exception):
    """Base class of every error pinnkit raises on purpose."""


class SpecError(PinnkitError, ValueError):
    """The problem specification is invalid (names the offending symbol, field or boundary)."""


class GeometryError(PinnkitError, ValueError):
    """A domain is malformed, or a boundary name does not exist."""


class TrainingError(PinnkitError, RuntimeError):
    """Training cannot continue (non-finite loss, bad option, missing device)."""


class OptionsError(TrainingError, ValueError):
    """An option of training (a keyword of `pk.train`, a key of a problem file's ``options``,
    a CLI flag) has a bad value or does not fit the problem; the message names the option
    and lists the valid choices. Raised before any work is done. A `TrainingError` (callers
    that catch those keep working) and a ValueError (a bad argument value)."""


class ReferenceSolverError(PinnkitError, RuntimeError):
    """The finite-difference reference failed (e.g. Newton or the time integrator did not converge)."""


class UnsupportedSpecError(ReferenceSolverError):
    """The finite-difference reference cannot discretize this spec; the message says why."""


class WriteError(PinnkitError, OSError):
    """A file could not be written (full disk, quota, a directory in the way); the message
    names the file. The previous file, if any, is unchanged and no temporary is left."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM at a consistent point (after a whole Adam step or
    between L-BFGS chunks). A KeyboardInterrupt, so that ``except Exception`` does not swallow
    a Ctrl-C. Attributes: ``signum``, ``solution`` (the partial `Solution`), ``checkpoint``
    (path of the checkpoint written, or None), ``where`` (e.g. "Adam step 120")."""

    def __init__(self, message: str, signum: int, solution, checkpoint, where: str) -> None:
        super().__init__(message)
        self.signum, self.solution = signum, solution
        self.checkpoint, self.where = checkpoint, where
