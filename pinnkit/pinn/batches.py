"""The training points of a PINN's loss terms, as typed immutable records.

- `Batch`: one point set, its points ``X`` (N, ndim) in coordinate order and what its
  term's kind adds (periodic: the matching points ``X2``; boundary: the normals ``N``; data:
  the observed ``values``; data parallel: ``S``, this rank's share of the global count).
- `Batches`: the interior points every PDE term shares (``interior``) and one `Batch` per
  other term (``terms``, by term name).

The arrays are numpy where sampled (`pinnkit.losses.sample_batches`) and torch where the
losses evaluate them (`Batches.map`). Both records are NamedTuples, so torch.compile and
torch.func take them as inputs of the compiled step (pytrees; the graphs guard on which
fields are set). Checkpoints and the collocation-points fingerprint keep them as plain
containers of arrays (`Batches.as_dict`/`Batches.from_dict`), in the layout of the
checkpoints written before these records existed.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

__all__ = ["Batch", "Batches", "INTERIOR_KEY"]

#: the interior points' key in `Batches.as_dict` (checkpoints, fingerprints)
INTERIOR_KEY = "__interior__"


class Batch(NamedTuple):
    """One point set (arrays with one row per point; None where the term has none)."""

    X: Any                  # (N, ndim) points
    X2: Any = None          # periodic: (N, ndim) the matching points on the opposite face
    N: Any = None           # boundary: (N, ndim) outward unit normals
    values: Any = None      # data: (N,) or (N, n_fields) observed values
    S: Any = None           # data parallel: this rank's share of the global count (0-dim)

    def map(self, fn: Callable) -> "Batch":
        """``fn`` applied to every array that is set."""
        return Batch(*(None if a is None else fn(a) for a in self))

    def as_dict(self) -> dict:
        """{field name: array} of the fields that are set."""
        return {k: a for k, a in zip(self._fields, self) if a is not None}


class Batches(NamedTuple):
    """The point sets of a problem's loss terms."""

    interior: Batch | None   # the PDE terms' collocation points (None: no PDE term)
    terms: dict              # {term name: Batch} of the other terms, in the problem's order

    def of(self, term: Any) -> Batch | None:
        """The points of ``term`` (a `pinnkit.spec.Term`): the interior ones for a PDE term."""
        return self.interior if term.kind == "pde" else self.terms.get(term.name)

    def map(self, fn: Callable) -> "Batches":
        """``fn`` applied to every array of every point set."""
        return self.map_batches(lambda b: b.map(fn))

    def map_batches(self, fn: Callable) -> "Batches":
        """``fn(batch) -> Batch`` applied to every point set."""
        return Batches(None if self.interior is None else fn(self.interior),
                       {k: fn(b) for k, b in self.terms.items()})

    def with_interior(self, X: Any) -> "Batches":
        """These point sets with new interior points ``X``."""
        return self._replace(interior=self.interior._replace(X=X))

    def as_dict(self) -> dict:
        """{`INTERIOR_KEY` or term name: {field name: array}}: the checkpoint's layout."""
        out = {INTERIOR_KEY: self.interior.as_dict()} if self.interior is not None else {}
        out.update({k: b.as_dict() for k, b in self.terms.items()})
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Batches":
        """The inverse of `as_dict`; a field name that `Batch` lacks raises TypeError."""
        terms = {k: Batch(**b) for k, b in d.items() if k != INTERIOR_KEY}
        interior = Batch(**d[INTERIOR_KEY]) if INTERIOR_KEY in d else None
        return cls(interior, terms)
