"""pinnkit: one PDE spec, two solvers (a PINN in torch, a finite-difference reference in SciPy)."""

from __future__ import annotations

from sympy import Abs, Eq, Rational, atan2, cos, cosh, exp, log, pi, sin, sinh, sqrt, tanh

from .errors import (GeometryError, OptionsError, PinnkitError, ReferenceSolverError, SpecError,
                     TrainingError, UnsupportedSpecError)
from .geometry import Box, Disk, Interval, Polygon, Rectangle, SpaceTime, TimeInterval
from .learned import network, polynomials
from .mesh import Mesh
from .spec import (BoundaryEquation, Data, Dirichlet, Initial, Neumann, Periodic, Problem, Robin,
                   coords, div, field, fields, grad, input_field, laplacian, normal, parameter)
from .grf import GaussianRandomField, SamplerError

__version__ = "0.1.0"

__all__ = [
    # spec
    "coords", "field", "fields", "parameter", "normal", "grad", "div", "laplacian", "Problem",
    "Dirichlet", "Neumann", "Robin", "Periodic", "Initial", "BoundaryEquation", "Data",
    "input_field",
    # operator learning
    "GaussianRandomField", "dataset", "Dataset", "train_operator", "OperatorModel",
    # learned terms and equation discovery
    "network", "polynomials", "discover",
    # sympy re-exports
    "sin", "cos", "exp", "log", "sqrt", "tanh", "sinh", "cosh", "atan2", "pi", "Rational", "Eq", "Abs",
    # geometry
    "Interval", "Rectangle", "Box", "Disk", "Polygon", "TimeInterval", "SpaceTime", "Mesh",
    # solvers and results
    "train", "Solution", "TrainOptions", "reference", "GridSolution", "compare", "export",
    # errors
    "PinnkitError", "SpecError", "GeometryError", "TrainingError", "OptionsError",
    "ReferenceSolverError",
    "UnsupportedSpecError", "SamplerError", "DatasetError",
]


def __dir__() -> list[str]:
    # the lazily loaded names (train, Solution, TrainOptions, export) belong to the listing
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):
    # The torch-based PINN path loads on first use, so `import pinnkit` for the spec or the
    # reference solver does not pay for importing torch; the finite-difference reference
    # (pinnkit.fd) and the metrics load on first use too, so the PINN path never loads them.
    import importlib
    if name in ("reference", "GridSolution"):
        return getattr(importlib.import_module(".fd", __name__), name)
    if name == "compare":
        return importlib.import_module(".metrics", __name__).compare
    if name in ("train", "Solution", "TrainOptions"):
        return getattr(importlib.import_module(".trainer", __name__), name)
    if name in ("dataset", "Dataset", "DatasetError"):
        return getattr(importlib.import_module(".operator.dataset", __name__), name)
    if name in ("train_operator", "OperatorModel"):
        return getattr(importlib.import_module(".operator.train", __name__), name)
    if name == "discover":
        return importlib.import_module(".sindy", __name__).discover
    if name == "export":
        return importlib.import_module(".io", __name__).export
    raise AttributeError(f"module 'pinnkit' has no attribute {name!r}")
