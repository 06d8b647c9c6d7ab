"""One exception family for everything pinnkit reports to a user."""

from __future__ import annotations

__all__ = ["PinnkitError", "SpecError", "GeometryError", "TrainingError",
           "ReferenceSolverError", "UnsupportedSpecError"]


class PinnkitError(Exception):
    """Base class of every error pinnkit raises on purpose."""


class SpecError(PinnkitError, ValueError):
    """The problem specification is invalid (names the offending symbol, field or boundary)."""


class GeometryError(PinnkitError, ValueError):
    """A domain is malformed, or a boundary name does not exist."""


class TrainingError(PinnkitError, RuntimeError):
    """Training cannot continue (non-finite loss, bad option, missing device)."""


class ReferenceSolverError(PinnkitError, RuntimeError):
    """The finite-difference reference failed (e.g. Newton or the time integrator did not converge)."""


class UnsupportedSpecError(ReferenceSolverError):
    """The finite-difference reference cannot discretize this spec; the message says why."""
