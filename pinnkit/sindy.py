"""Equation discovery: sparse regression of trained learned terms onto a library (SINDy).

Brunton, Proctor & Kutz (2016), "Discovering governing equations from data by sparse
identification of nonlinear dynamical systems", PNAS 113(15): sequentially thresholded least
squares (STLSQ). Used on a universal differential equation's network as in Rackauckas et al.
(2020): the network is evaluated along the trained solution, each output is regressed onto the
library, and the result is a sympy expression of the fields that `Problem.substitute` puts
back into the spec. Numpy only (the trained networks come as numpy callables).

``select="bic"``: sparse model selection by an information criterion, after
Mangan, Kutz, Brunton & Proctor (2017), "Model selection for dynamical systems via sparse
regression and information criteria", Proc. R. Soc. A 473: 20170009. The network proposes
candidate supports (best-subset regression of its outputs, per number of terms); every
candidate system is refit to the *data* by solving it (the coefficient re-estimation of
Rackauckas et al. 2020: an ODE system integrated with SciPy, a problem with space coordinates
solved by the finite-difference reference, one solve per evaluation) and scored by the Bayesian information criterion (Schwarz 1978); of
the models within 2 of the smallest BIC ("not worth more than a bare mention", Kass & Raftery
1995) the one with the fewest terms is kept. A network that fits the data but is imprecise,
or a library that is nearly collinear on the states the data visit, then no longer puts
every term into the answer.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np
import sympy

from .errors import SpecError
from .expr import compile_expr
from .learned import PolynomialLibrary

__all__ = ["discover", "stlsq", "rank_models", "SELECTIONS"]

#: model selection of `discover`: None (STLSQ at the threshold) or an information criterion
SELECTIONS = (None, "bic")


def stlsq(theta: np.ndarray, y: np.ndarray, threshold: float, max_iter: int = 20) -> np.ndarray:
    """ξ minimizing ‖Θξ − y‖ with every |ξ_j| < threshold set to 0 (STLSQ; Brunton 2016).

    theta (n, p), y (n,); returns ξ (p,)."""
    xi = np.linalg.lstsq(theta, y, rcond=None)[0]
    for _ in range(max_iter):
        small = np.abs(xi) < threshold
        new = np.zeros_like(xi)
        if (~small).any():
            new[~small] = np.linalg.lstsq(theta[:, ~small], y, rcond=None)[0]
        if np.array_equal(new != 0, xi != 0) and np.allclose(new, xi):
            return new
        xi = new
    return xi


def _sample_points(problem, samples: int, seed: int) -> dict:
    """Points at which to evaluate the learned terms: equally spaced times on the data window
    (ODE systems), else quasi-random interior points of the domain."""
    domain = problem.domain
    if not problem.spatial_coords:
        return {problem.time.name: np.linspace(float(domain.t0), float(domain.t1), samples)}
    return domain.sample_interior(samples, "sobol", seed)


def discover(sol: Any, library: PolynomialLibrary | Sequence | None = None,
             threshold: float = 0.1, samples: int = 200, seed: int = 0,
             select: str | None = None, candidates: int = 1) -> dict:
    """{learned output name: sympy expression of the fields/coordinates} by SINDy.

    sol: a trained solution with ``problem``, ``__call__`` and ``learned_terms()`` (method
    "ode" or a PINN with learned terms). library: `pk.polynomials(degree)` of each network's
    inputs (default degree 2), or a list of sympy expressions of the fields and coordinates.
    threshold: STLSQ's cut on coefficients. samples: points along the solution.
    select: None (STLSQ at ``threshold``) or ``"bic"``: model selection by the Bayesian
    information criterion of candidate systems refit to the problem's Data (ODE systems
    integrated with SciPy, PDE problems solved by `pinnkit.reference`; see the module
    docstring and `rank_models`); ``candidates``: supports per number of terms
    that each output proposes (best-subset regression on the network's outputs).
    Raises `SpecError` for a solution without learned terms, a bad library or option.
    """
    if select not in SELECTIONS:
        raise SpecError(f"discover: select must be one of None, 'bic', got {select!r}")
    fits = _regressions(sol, library, threshold, samples, seed)
    if select is None:
        return {name: _expression(xi, terms) for name, (terms, theta, y, xi) in fits.items()}
    return rank_models(sol, fits, candidates)[0]["found"]


def _regressions(sol: Any, library, threshold: float, samples: int, seed: int) -> dict:
    """{output name: (library terms, Θ (n, p), network output (n,), STLSQ ξ (p,))}."""
    problem = sol.problem
    if not problem.networks:
        raise SpecError(f"discover: problem {problem.name!r} has no learned terms (pk.network)")
    if not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise SpecError(f"discover: threshold must be a number >= 0, got {threshold!r}")
    library = PolynomialLibrary(2) if library is None else library
    points = _sample_points(problem, samples, seed)
    values = sol(points)
    names = [c.name for c in problem.coords]
    arrays = [np.asarray(points[n], float).ravel() for n in names]
    arrays += [np.asarray(values[f], float).ravel() for f in problem.fields]
    args = list(problem.coords) + list(problem.fields.values())
    nets = sol.learned_terms()
    out: dict = {}
    for name, net in problem.networks.items():
        X = np.stack([_evaluate(args, e, arrays) for e in net.inputs], axis=1)
        Y = np.asarray(nets[name](X), float).reshape(len(X), -1)
        if isinstance(library, PolynomialLibrary):
            terms = library.terms(list(net.inputs))
        elif isinstance(library, (list, tuple)) and library:
            terms = [sympy.sympify(e) for e in library]
        else:
            raise SpecError(f"discover: library must be pk.polynomials(...) or a non-empty list of "
                            f"sympy expressions, got {library!r}")
        for e in terms:
            extra = e.free_symbols - set(problem.coords)
            if extra:
                raise SpecError(f"discover: library term {e} uses {', '.join(map(str, extra))}, "
                                "which are not coordinates")
        theta = np.stack([_evaluate(args, e, arrays) for e in terms], axis=1)
        for k, call in enumerate(net.outputs):
            xi = stlsq(theta, Y[:, k], float(threshold))
            out[call.func.__name__] = (terms, theta, Y[:, k], xi)
    return out


def _expression(xi: np.ndarray, terms: list, digits: int = 6) -> sympy.Expr:
    return sympy.Add(*[sympy.Float(c, digits) * e for c, e in zip(xi, terms) if c != 0])


#: libraries up to this size are searched exhaustively for the best supports of each size
MAX_EXHAUSTIVE_TERMS = 12
#: candidate systems (products of the outputs' candidate supports) that rank_models refits
MAX_MODELS = 400
#: right-hand-side evaluations allowed per integration of a candidate (else it is dropped)
MAX_RHS_CALLS = 20000
#: reweighted least-squares passes of a candidate's refit (one noise variance per component)
MAX_REWEIGHTS = 6
#: models within this much of the smallest BIC are equally supported (Kass & Raftery 1995)
BIC_MARGIN = 2.0


def _candidate_supports(theta: np.ndarray, y: np.ndarray, per_size: int) -> list:
    """The ``per_size`` supports of each number of terms whose least-squares fit to ``y``
    has the smallest residual (best-subset regression), fewest terms first."""
    p = theta.shape[1]
    out = []
    for m in range(1, p + 1):
        scored = []
        for s in itertools.combinations(range(p), m):
            c = np.linalg.lstsq(theta[:, s], y, rcond=None)[0]
            scored.append((float(np.linalg.norm(theta[:, s] @ c - y)), s))
        out += [s for _, s in sorted(scored)[:per_size]]
    return out


def rank_models(sol: Any, fits: dict, candidates: int = 1) -> list:
    """Candidate systems for the learned outputs, refit to the problem's Data and ranked.

    ``fits``: `discover`'s regressions {output: (terms, Θ, network output, ξ)}. Each output
    proposes its best ``candidates`` supports of every size (`_candidate_supports`, starting
    coefficients from the network); every combination is integrated with SciPy (LSODA, rtol
    1e-10) from each observed trajectory's initial state (a problem with space coordinates:
    solved by `pinnkit.reference` and interpolated at the Data's points), its coefficients
    are refit to every
    observed value by maximum likelihood with one Gaussian noise variance per observed
    component (least squares reweighted by each component's residual RMS until the
    coefficients settle; `scipy.optimize.least_squares`), and it is scored
    by BIC = Σ_j n_j ln(RSS_j / n_j) + k ln N (j: each observed component of each Data
    condition, with its own noise variance; k nonzero coefficients; N observed values).
    Returns [{"found", "bic", "terms", "rss"}] in the order of preference: first the model
    with the fewest terms among those within `BIC_MARGIN` of the smallest BIC, then by BIC.
    Models whose integration fails are left out. Raises `SpecError` for a problem without
    Data, a PDE problem with unknown parameters, or too many candidates."""
    from scipy.optimize import least_squares
    problem = sol.problem
    if not (isinstance(candidates, int) and candidates >= 1):
        raise SpecError(f"discover: candidates must be a positive integer, got {candidates!r}")
    for name, (terms, *_) in fits.items():
        if len(terms) > MAX_EXHAUSTIVE_TERMS:
            raise SpecError(f"discover: select='bic' searches the supports of {name} exhaustively "
                            f"and its library has {len(terms)} terms (at most "
                            f"{MAX_EXHAUSTIVE_TERMS}); use a smaller library")
    names = list(fits)
    supports = [_candidate_supports(fits[n][1], fits[n][2], candidates) for n in names]
    count = int(np.prod([len(s) for s in supports]))
    if count > MAX_MODELS:
        raise SpecError(f"discover: select='bic' would refit {count} candidate systems (at most "
                        f"{MAX_MODELS}); lower candidates or use a smaller library")
    model = (_FieldDataModel if problem.spatial_coords else _DataModel)(
        sol, {n: fits[n][0] for n in names})
    ranked = []
    for combo in itertools.product(*supports):
        start = np.concatenate([np.linalg.lstsq(fits[n][1][:, s], fits[n][2], rcond=None)[0]
                                for n, s in zip(names, combo)])
        fit = model.refit(dict(zip(names, combo)), start, least_squares)
        if fit is None:
            continue
        coefs, rss, counts = fit
        k, n_total = len(coefs), int(sum(counts))
        bic = float(np.sum(counts * np.log(np.maximum(rss, 1e-300) / counts)) + k * np.log(n_total))
        found, i = {}, 0
        for n, s in zip(names, combo):
            xi = np.zeros(len(fits[n][0]))
            xi[list(s)] = coefs[i:i + len(s)]
            i += len(s)
            found[n] = _expression(xi, fits[n][0])
        ranked.append({"found": found, "bic": bic, "terms": k, "rss": float(rss.sum())})
    if not ranked:
        why = f" (the last failure: {model.failure})" if model.failure else ""
        raise SpecError(f"discover: no candidate model of problem {problem.name!r} could be "
                        f"integrated over the data{why}")
    best = min(r["bic"] for r in ranked)
    ranked.sort(key=lambda r: (r["bic"] > best + BIC_MARGIN, r["terms"], r["bic"]))
    return ranked


class _Diverged(Exception):
    pass


class _Refit:
    """A candidate model's predictions of the problem's Data, refit to them: subclasses set
    ``order`` (the learned outputs), ``sizes`` ({output: library size}), ``data`` (data sets
    with ``values`` (n, k)) and define ``simulate``."""

    order: list
    sizes: dict
    data: list
    failure: str | None = None     # why the last candidate could not be solved, when known

    def simulate(self, xi: dict) -> list | None:
        """[(data set, predicted values (n, k))] with output n = Θ ξ[n], or None when the
        candidate cannot be solved."""
        raise NotImplementedError

    def refit(self, support: dict, start: np.ndarray, least_squares) -> tuple | None:
        """(coefficients, RSS per observed component, values per component) after least
        squares on the data from ``start``; None if the model cannot be integrated."""
        sizes = {n: len(support[n]) for n in support}

        def unpack(c):
            xi, i = {}, 0
            for n in self.order:
                v = np.zeros(self.sizes[n])
                v[list(support[n])] = c[i:i + sizes[n]]
                i += sizes[n]
                xi[n] = v
            return xi

        def residuals(c, scale):
            pred = self.simulate(unpack(c))
            if pred is None:
                return np.full(self.n_values, 1e6)
            return np.concatenate([((y - d.values) / scale[id(d)]).ravel() for d, y in pred])
        self.n_values = sum(d.values.size for d in self.data)
        x = np.concatenate([start[self._slice(support, n)] for n in self.order])
        if self.simulate(unpack(x)) is None:
            return None
        # maximum likelihood with one noise variance per observed component (the likelihood
        # BIC scores): least squares reweighted by each component's residual RMS until the
        # coefficients settle (iteratively reweighted least squares)
        scale = {id(d): np.ones(d.values.shape[1]) for d in self.data}
        for _ in range(MAX_REWEIGHTS):
            res = least_squares(residuals, x, args=(scale,), diff_step=1e-6,
                                method="lm" if self.n_values >= len(x) else "trf")
            pred = self.simulate(unpack(res.x))
            if pred is None:
                return None
            settled = np.allclose(res.x, x, rtol=1e-6, atol=1e-9)
            x = res.x
            for d, y in pred:
                rms = np.sqrt(np.mean((y - d.values) ** 2, axis=0))
                scale[id(d)] = np.maximum(rms, 1e-10 * np.sqrt(np.mean(d.values ** 2, axis=0))
                                          + 1e-300)
            if settled:
                break
        rss = np.array([np.sum((y - d.values)[:, j] ** 2) for d, y in pred
                        for j in range(y.shape[1])])
        counts = np.array([len(d.values) for d, y in pred for _ in range(y.shape[1])], float)
        coefs = np.concatenate([x[self._slice(support, n, self.order)] for n in support])
        return coefs, rss, counts

    @staticmethod
    def _slice(support: dict, name: str, order: list | None = None) -> slice:
        keys = list(support) if order is None else order
        i = sum(len(support[n]) for n in keys[:keys.index(name)])
        return slice(i, i + len(support[name]))


class _DataModel(_Refit):
    """The problem's ODE system with each learned output replaced by Θ(t, y) ξ, integrated
    with SciPy over every observed trajectory; residuals against the Data."""

    def __init__(self, sol: Any, terms: dict) -> None:
        from .expr import compile_exprs
        from .ode.system import ode_system, split_networks
        problem = sol.problem
        system = ode_system(problem, "discover(select='bic')")
        if not system.data:
            raise SpecError(f"discover: select='bic' refits candidate models to the data, and "
                            f"problem {problem.name!r} has no pk.Data condition")
        trained = dict(getattr(sol, "parameters", {}) or {})
        pvals = [float(trained.get(p.name, p.init)) for p in system.parameters]
        base = [system.t] + list(system.symbols) + list(system.parameters)
        rhs, groups = split_networks(system.rhs)
        holders, self.order = [], []
        for net, _, outs in groups:
            for k, ph in outs:
                holders.append(ph)
                self.order.append(net.outputs[k].func.__name__)
        f_rhs = compile_exprs(base + holders, rhs, "numpy")
        to_state = {problem.fields[f]: system.symbols[col] for f, col in system.fields.items()}
        self.theta = {n: compile_exprs(base, [sympy.sympify(e).xreplace(to_state) for e in ts],
                                       "numpy") for n, ts in terms.items()}
        self.sizes = {n: len(ts) for n, ts in terms.items()}
        self.f_rhs, self.pvals, self.system = f_rhs, pvals, system
        self.data = system.data
        subs = dict(zip(system.parameters, pvals))
        self.y0 = [np.array([float(sympy.sympify(g).subs(subs)) for g in y], float)
                   for y in system.trajectories]

    def simulate(self, xi: dict) -> list | None:
        """[(data set, predicted values (n, k))] or None when an integration fails."""
        from scipy.integrate import solve_ivp
        sys_ = self.system

        calls = [0]

        def f(t, y):
            calls[0] += 1
            if calls[0] > MAX_RHS_CALLS:      # a candidate that blows up or turns stiff
                raise _Diverged
            a = [t, *y, *self.pvals]
            outs = [float(np.dot(np.asarray(self.theta[n](*a), float), xi[n])) for n in self.order]
            return np.asarray(self.f_rhs(*a, *outs), float).reshape(-1)
        out = []
        for traj in sorted({d.trajectory for d in sys_.data}):
            sets = [d for d in sys_.data if d.trajectory == traj]
            times = np.unique(np.concatenate([d.times for d in sets]))
            calls[0] = 0
            try:
                with np.errstate(all="ignore"):
                    res = solve_ivp(f, (sys_.t0, float(times[-1])), self.y0[traj],
                                    method="LSODA", t_eval=times, rtol=1e-10, atol=1e-12)
            except _Diverged:
                return None
            if not res.success or res.y.shape[1] != len(times) or not np.isfinite(res.y).all():
                return None
            for d in sets:
                out.append((d, res.y[:, np.searchsorted(times, d.times)].T[:, d.columns]))
        return out



class _FieldData:
    """One Data condition of a problem with space coordinates: its fields, points and values
    (n, k)."""

    def __init__(self, term) -> None:
        self.fields = [u.func.__name__ for u in term.exprs]
        self.points = term.data_points
        self.values = np.asarray(term.data_values, float).reshape(len(term.data_values), -1)


class _FieldDataModel(_Refit):
    """A problem with space coordinates and each learned output replaced by Θ ξ, solved by
    the finite-difference reference (`pinnkit.reference`, the problem's own options) and
    interpolated at the Data's points; one solve per evaluation of a candidate."""

    def __init__(self, sol: Any, terms: dict) -> None:
        problem = sol.problem
        if problem.parameters:
            raise SpecError(f"discover: select='bic' refits candidate models through the "
                            f"finite-difference reference, which does not solve for unknown "
                            f"parameters; problem {problem.name!r} has "
                            f"{', '.join(p.name for p in problem.parameters)}")
        self.data = [_FieldData(t) for t in problem.terms if t.kind == "data"]
        if not self.data:
            raise SpecError(f"discover: select='bic' refits candidate models to the data, and "
                            f"problem {problem.name!r} has no pk.Data condition")
        self.problem = problem
        self.terms = {n: [sympy.sympify(e) for e in ts] for n, ts in terms.items()}
        self.order = list(terms)
        self.sizes = {n: len(ts) for n, ts in terms.items()}

    def simulate(self, xi: dict) -> list | None:
        from .errors import PinnkitError
        from .fd import reference
        # full precision: the refit differentiates the predictions by finite differences
        found = {n: _expression(xi[n], self.terms[n], digits=17) for n in self.order}
        try:
            with np.errstate(all="ignore"):
                ref = reference(self.problem.substitute(found))
        except PinnkitError as exc:   # the candidate blows up or cannot be solved
            self.failure = str(exc)
            return None
        out = []
        for d in self.data:
            values = ref(d.points)
            y = np.stack([np.asarray(values[f], float).ravel() for f in d.fields], axis=1)
            if not np.isfinite(y).all():
                return None
            out.append((d, y))
        return out


def _evaluate(args: list, expr: sympy.Expr, arrays: list) -> np.ndarray:
    fn = compile_expr(args, expr, "numpy")
    return np.broadcast_to(np.asarray(fn(*arrays), float), arrays[0].shape).astype(float)
