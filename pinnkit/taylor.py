"""Taylor-mode (forward) derivative engine for pinnkit's own networks.

Instead of differentiating the network output backwards once per derivative order (nested
autograd), the engine pushes a truncated multivariate Taylor polynomial of the input through
the network in one forward pass. A *jet* holds, for every multi-index γ of a set S (closed
under taking smaller multi-indices, γ = 0 first), the Taylor coefficient u_γ = ∂^γ u / γ!,
kept as a list of (width, N) tensors: feature-major, so that the elementwise kernels run
along the points, in whole SIMD vectors, rather than along a width such as 20 that leaves a
masked remainder in every row (on this CPU a compiled Burgers step took 2.5 ms point-major,
1.9 ms feature-major); slicing one stacked tensor instead of a list would make the backward
pass fill a full-size zero gradient per slice. A coefficient that is the same at every point
is kept as one (width, 1) column, and one that is identically zero as None: the input's
first-order coefficients are constant one-hot columns and its higher ones zero, so the first
layer's derivative streams cost a (width, d)·(d, 1) product instead of a (d, N·|S|) one, and
no work is spent on zeros (the engine's output expands them again):

- affine maps act on every coefficient (the bias on the value only);
- an elementwise function σ uses Faà di Bruno on coefficients,
  h_γ = Σ_k σ^(k)(z_0)/k! · [δ^k]_γ with δ = z − z_0, where the first- and second-order
  blocks are vectorised (h_e = σ' z_e; h_{e+f} = σ' z_{e+f} + σ''·w·z_e z_f) and higher
  orders use the precomputed partitions of each γ;
- products (modified MLP gates, hard constraints) use the truncated Cauchy product.

Mixed derivatives (u_xy) are ordinary members of S, so no polarization is needed. Supported:
`MLP`, `ModifiedMLP`, `FourierFeatures`, activations tanh and sin, hard-constraint
transforms (whose parameter-free factors come with their symbolic derivatives).
`supports(model)` says whether a model qualifies; the "auto" engine falls back to nested
autograd otherwise.
"""

from __future__ import annotations

import itertools
import math

import torch

from .derivatives import unit_index
from .nn import MLP, FourierFeatures, ModifiedMLP, PeriodicEmbedding, PINNModel, PirateNet

__all__ = ["TaylorMode", "supports", "multi_index_closure"]

Index = tuple  # multi-index: orders per input coordinate


def multi_index_closure(indices, ndim: int) -> tuple:
    """All multi-indices ≤ some given one (componentwise), sorted by total order; 0 first."""
    out = set()
    for g in indices:
        for sub in itertools.product(*[range(n + 1) for n in g]):
            out.add(tuple(sub))
    out.add((0,) * ndim)
    return tuple(sorted(out, key=lambda a: (sum(a), tuple(-v for v in a))))


def _partitions(g: Index, parts: list, k: int):
    """Ordered k-tuples of non-zero members of ``parts`` summing to g."""
    if k == 1:
        if g in parts:
            yield (g,)
        return
    for a in parts:
        rest = tuple(x - y for x, y in zip(g, a))
        if min(rest) >= 0 and any(rest):
            for tail in _partitions(rest, parts, k - 1):
                yield (a,) + tail


class _Tables:
    """Index tables for a multi-index set S (cached per S), plus the collapsed Laplacian
    stream C = Σ_i u_{2e_i} over ``lap_axes`` (index ``lap`` = len(S)) when there are any."""

    def __init__(self, S: tuple, lap_axes: tuple = ()) -> None:
        self.S = S
        pos = {g: i for i, g in enumerate(S)}
        self.pos = pos
        order = [sum(g) for g in S]
        self.has_lap = bool(lap_axes)
        self.lap = len(S)
        self.size = len(S) + self.has_lap
        self.lap_first = [pos[unit_index(len(S[0]), i)] for i in lap_axes]
        self.max_order = max(max(order), 2 if self.has_lap else 0)
        self.first = [i for i, o in enumerate(order) if o == 1]
        self.second = [i for i, o in enumerate(order) if o == 2]
        nz = [g for g in S if any(g)]
        # second order: γ = a + b with a, b first order; weight = (ordered count) / 2!
        A, B, W = [], [], []
        for i in self.second:
            g = S[i]
            pairs = [p for p in _partitions(g, [x for x in nz if sum(x) == 1], 2)]
            a, b = pairs[0]
            A.append(pos[a])
            B.append(pos[b])
            W.append(len(pairs) / 2.0)
        self.sec_a, self.sec_b, self.sec_w = A, B, W
        # higher orders: for each γ, for each k ≥ 2, the ordered partitions into k parts
        self.high = []
        for i, g in enumerate(S):
            if order[i] <= 2:
                continue
            terms = []
            for k in range(2, order[i] + 1):
                counts: dict = {}
                for p in _partitions(g, nz, k):
                    key = tuple(sorted(pos[a] for a in p))
                    counts[key] = counts.get(key, 0) + 1
                for idx, c in counts.items():
                    terms.append((k, idx, c / math.factorial(k)))
            self.high.append((i, terms))
        # Cauchy product pairs: γ = a + b, a, b in S
        T, PA, PB = [], [], []
        for i, g in enumerate(S):
            for a in S:
                b = tuple(x - y for x, y in zip(g, a))
                if min(b) >= 0 and b in pos:
                    T.append(i)
                    PA.append(pos[a])
                    PB.append(pos[b])
        self.prod_t, self.prod_a, self.prod_b = T, PA, PB
        self.factorials = [math.prod(math.factorial(n) for n in g) for g in S]


_TABLES: dict = {}


def _tables(S: tuple, lap_axes: tuple = ()) -> _Tables:
    tab = _TABLES.get((S, lap_axes))
    if tab is None:
        tab = _TABLES[(S, lap_axes)] = _Tables(S, lap_axes)
    return tab


def _mul(a, b):
    """a·b of jet coefficients, None standing for an identically zero one."""
    return None if a is None or b is None else a * b


def _add(a, b):
    return b if a is None else a if b is None else a + b


def _sub(a, b):
    return a if b is None else -b if a is None else a - b


def _cat(cs: list, widths: list, n: int):
    """Concatenate coefficients (of the given widths) along features; constant columns and
    zeros are expanded to n points when another part is per point."""
    if all(c is None for c in cs):
        return None
    like = next(c for c in cs if c is not None)
    cols = 1 if all(c is None or c.shape[1] == 1 for c in cs) else n
    return torch.cat([like.new_zeros((w, cols)) if c is None else c.expand(-1, cols)
                      for c, w in zip(cs, widths)], dim=0)


# --------------------------------------------------------------------------- elementwise

def _tanh_derivs(h0: torch.Tensor, n: int) -> list:
    """[σ', σ'', ...] of tanh up to order n from σ = h0 (Leibniz on σ' = 1 − σ²)."""
    d = [h0, 1 - h0 * h0]
    for k in range(2, n + 1):
        # σ^(k) = −Σ_{j=0}^{k-1} C(k-1, j) σ^(j) σ^(k-1-j)
        d.append(-sum(math.comb(k - 1, j) * d[j] * d[k - 1 - j] for j in range(k)))
    return d[1:]


def _trig_derivs(first: torch.Tensor, h0: torch.Tensor, n: int) -> list:
    """[σ', σ'', ...] up to order n of σ = sin or cos, from σ = h0 and σ' = ``first``
    (σ'' = −σ, so the derivatives cycle σ', −σ, −σ', σ)."""
    cycle = [first, -h0, -first, h0]
    return [cycle[k % 4] for k in range(n)]


def _apply(J: list, tab: _Tables, h0: torch.Tensor, d: list) -> list:
    """Coefficients of σ(z) given z's jet J, σ(z0) = h0 and derivatives d = [σ', σ'', ...]."""
    out = [h0]
    if len(J) == 1:
        return out
    s1 = d[0]
    for i in tab.first:
        out.append(_mul(s1, J[i]))
    if tab.second:
        s2 = d[1]
        half = None
        for i, a, b, w in zip(tab.second, tab.sec_a, tab.sec_b, tab.sec_w):
            sq = _mul(J[a], J[b])
            if sq is not None:
                if w == 0.5:
                    half = 0.5 * s2 if half is None else half
                    sq = half * sq
                else:
                    sq = (w * s2) * sq
            out.append(_add(_mul(s1, J[i]), sq))
    for i, terms in tab.high:
        acc = _mul(s1, J[i])
        for k, idx, c in terms:
            prod = J[idx[0]]
            for j in idx[1:]:
                prod = _mul(prod, J[j])
            if prod is not None:
                acc = _add(acc, (c * d[k - 1]) * prod)
        out.append(acc)
    if tab.has_lap:
        sq = None
        for i in tab.lap_first:
            sq = _add(sq, _mul(J[i], J[i]))
        out.append(_add(_mul(s1, J[tab.lap]), None if sq is None else (0.5 * d[1]) * sq))
    return out


# tanh(x) ≈ x·P(x²)/Q(x²) on [−c, c], ±1 beyond (Eigen's float32 coefficients, lowest order
# first): within 4.1e-7 relative of tanh (20M random float32 inputs; torch.tanh: 1.1e-7)
_TANH_P = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
           5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
           -2.76076847742355e-16)
_TANH_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
           1.19825839466702e-06)
_TANH_CLAMP = 7.90531110763549805


def _poly(x2: torch.Tensor, coefficients: tuple) -> torch.Tensor:
    acc = coefficients[-1]
    for c in coefficients[-2::-1]:
        acc = acc * x2 + c
    return acc


class _RationalTanh(torch.autograd.Function):
    """tanh as the rational function above, differentiated as tanh (dσ/dz = 1 − σ², from the
    saved value): the backward pass does not differentiate the polynomial. Under
    torch.func.vmap its forward and backward are batched as the torch operations they are."""

    generate_vmap_rule = True

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        x = z.clamp(-_TANH_CLAMP, _TANH_CLAMP)
        x2 = x * x
        return x * _poly(x2, _TANH_P) / _poly(x2, _TANH_Q)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


def tanh(z: torch.Tensor) -> torch.Tensor:
    """torch.tanh, except in a float32 graph compiled for a CPU: there the rational function
    above, which Inductor's C++ kernels evaluate about 3.7x faster than their vectorised tanh
    (489 vs 132 us for 20 x 7620 values, one thread). It pays only when Inductor stores its
    value once instead of recomputing it in every kernel that reads it, so pinnkit compiles
    such graphs with `pinnkit.pinn.compiled.FAST_TANH_OPTIONS` (docs/benchmarks.md 5.7.4)."""
    if z.dtype == torch.float32 and z.device.type == "cpu" and torch.compiler.is_compiling():
        return _RationalTanh.apply(z)
    return torch.tanh(z)


def _act(J: list, tab: _Tables, kind: str) -> list:
    z0 = J[0]
    n = tab.max_order
    if kind == "tanh":
        h0 = tanh(z0)
        return _apply(J, tab, h0, _tanh_derivs(h0, n) if n else [])
    if kind == "sin":
        h0 = torch.sin(z0)
        return _apply(J, tab, h0, _trig_derivs(torch.cos(z0), h0, n) if n else [])
    if kind == "cos":
        h0 = torch.cos(z0)
        return _apply(J, tab, h0, _trig_derivs(-torch.sin(z0), h0, n) if n else [])
    raise NotImplementedError(kind)


def _linear(J: list, layer: torch.nn.Linear) -> list:
    """The value gets W z + b; the derivative coefficients W z (the per-point ones side by
    side in one matmul, constant columns on their own, zeros stay zero). Compiled, a map to
    a few outputs is an elementwise product and a sum, which Inductor fuses with its
    neighbours (as a matmul its backward is an outer product at a fraction of the speed of
    memory)."""
    W = layer.weight
    b = None if layer.bias is None else layer.bias.unsqueeze(1)
    if W.shape[0] <= 4 and torch.compiler.is_compiling():
        Wc = W.unsqueeze(-1)
        return [_add(None if c is None else (Wc * c.unsqueeze(0)).sum(1), bias)
                for c, bias in zip(J, [b] + [None] * (len(J) - 1))]
    n = J[0].shape[1]
    out = [torch.matmul(W, J[0]) if b is None else torch.addmm(b, W, J[0])]
    out += [None] * (len(J) - 1)
    full = []
    for i, c in enumerate(J[1:], 1):
        if c is not None and c.shape[1] == 1 and n != 1:    # a constant column: on its own
            out[i] = torch.matmul(W, c)
        elif c is not None:
            full.append(i)
    if len(full) == 1:
        out[full[0]] = torch.matmul(W, J[full[0]])
    elif full:
        stacked = torch.matmul(W, torch.cat([J[i] for i in full], dim=1))
        for i, c in zip(full, stacked.split(n, dim=1)):
            out[i] = c
    return out


def _product(A: list, B: list, tab: _Tables) -> list:
    """Truncated Cauchy product of two jets with equal S."""
    out = [None] * len(tab.S)
    for t, a, b in zip(tab.prod_t, tab.prod_a, tab.prod_b):
        out[t] = _add(out[t], _mul(A[a], B[b]))
    if tab.has_lap:
        c = _add(_mul(A[0], B[tab.lap]), _mul(A[tab.lap], B[0]))
        for i in tab.lap_first:
            c = _add(c, _mul(A[i], B[i]))
        out.append(c)
    return out


# --------------------------------------------------------------------------- networks

def _fourier_jet(emb, J: list, tab: _Tables) -> tuple[list, list]:
    Bt = (2 * math.pi) * emb.B.to(J[0].dtype).t()
    Z = [None if c is None else torch.matmul(Bt, c) for c in J]
    return [_act(Z, tab, "cos"), _act(Z, tab, "sin")], [Bt.shape[0]] * 2


def _periodic_jet(emb, J: list, tab: _Tables) -> tuple[list, list]:
    k = emb.k.to(J[0].dtype).unsqueeze(1)
    widths = [len(emb.keep)]
    parts = [[None if c is None else c[emb.keep] for c in J]]
    for col in emb.columns:
        Z = [None if c is None else c[col:col + 1] * k for c in J]
        widths += [k.numel()] * 2
        parts += [_act(Z, tab, "cos"), _act(Z, tab, "sin")]
    return parts, widths


#: input embeddings with a Taylor mode: class -> jet(embedding, J, tables) -> (parts, widths)
EMBEDDING_JETS = {FourierFeatures: _fourier_jet, PeriodicEmbedding: _periodic_jet}


def _embed_jet(emb, J: list, tab: _Tables) -> list:
    """Jet through an input embedding (one of `EMBEDDING_JETS`, or a chain of them)."""
    if isinstance(emb, torch.nn.Sequential):
        for m in emb:
            J = _embed_jet(m, J, tab)
        return J
    jet = EMBEDDING_JETS.get(type(emb))
    if jet is None:
        raise NotImplementedError(type(emb).__name__)
    parts, widths = jet(emb, J, tab)
    n = J[0].shape[1]
    return [_cat([p[i] for p in parts], widths, n) for i in range(len(J))]


def _act_kind(module) -> str | None:
    name = type(module).__name__
    return {"Tanh": "tanh", "Sine": "sin"}.get(name)


def _mlp_jet(core, J: list, tab: _Tables, kind: str) -> list:
    h = J
    for layer in core.hidden:
        h = _act(_linear(h, layer), tab, kind)
    return _linear(h, core.out)


def _modified_mlp_jet(core, J: list, tab: _Tables, kind: str) -> list:
    U = _act(_linear(J, core.enc_u), tab, kind)
    V = _act(_linear(J, core.enc_v), tab, kind)
    D = [_sub(v, u) for u, v in zip(U, V)]
    h = J
    for layer in core.hidden:
        Z = _act(_linear(h, layer), tab, kind)
        h = [_add(u, p) for u, p in zip(U, _product(Z, D, tab))]
    return _linear(h, core.out)


def _pirate_jet(core, J: list, tab: _Tables, kind: str) -> list:
    U = _act(_linear(J, core.enc_u), tab, kind)
    V = _act(_linear(J, core.enc_v), tab, kind)
    D = [_sub(u, v) for u, v in zip(U, V)]
    h = J if core.lift is None else _linear(J, core.lift)
    for (l1, l2, l3), a in zip(core.blocks, core.alpha):
        z = [_add(v, p) for v, p in zip(V, _product(_act(_linear(h, l1), tab, kind), D, tab))]
        z = [_add(v, p) for v, p in zip(V, _product(_act(_linear(z, l2), tab, kind), D, tab))]
        h = [_add(_mul(a, g), _mul(1 - a, q)) for g, q in zip(_act(_linear(z, l3), tab, kind), h)]
    return _linear(h, core.out)


#: networks with a Taylor mode: class -> jet(core, J, tables, activation kind); a new network
#: gets its Taylor-mode forward here, beside the others (its plain forward is in `pinnkit.nn`)
NETWORK_JETS = {MLP: _mlp_jet, ModifiedMLP: _modified_mlp_jet, PirateNet: _pirate_jet}


def supports(model) -> bool:
    """Whether the Taylor engine can propagate through ``model`` (a `PINNModel`)."""
    if not isinstance(model, PINNModel):
        return False
    emb = model.embedding
    parts = list(emb) if isinstance(emb, torch.nn.Sequential) else ([] if emb is None else [emb])
    if not all(type(m) in EMBEDDING_JETS for m in parts):
        return False
    core = model.core
    if type(core) not in NETWORK_JETS or _act_kind(core.act) is None:
        return False
    c = model.constraint
    return c is None or hasattr(c, "derivatives")


def _core_jet(core, J: torch.Tensor, tab: _Tables) -> torch.Tensor:
    return NETWORK_JETS[type(core)](core, J, tab, _act_kind(core.act))


def model_jet(model, X: torch.Tensor, S: tuple, raw: bool = False, lap_axes: tuple = ()) -> list:
    """Jet of ``model`` at X (N, d): a list over S (then the collapsed Laplacian stream, if
    ``lap_axes``) of feature-major (outputs, N) tensors, an (outputs, 1) column where a
    coefficient is the same at every point, or None where it is zero; ``raw`` skips the output
    constraint."""
    tab = _tables(S, lap_axes)
    lo, hi = model.lo.to(X.dtype), model.hi.to(X.dtype)
    scale = 2 / (hi - lo)
    J = [((X - lo) * scale - 1).t()]
    eye = torch.diag(scale).to(device=X.device)
    for i in tab.first:        # d(input)/d(x_axis): a constant one-hot column; higher ones zero
        axis = S[i].index(1)
        J.append(eye[:, axis:axis + 1])
    J += [None] * (tab.size - len(J))
    if model.embedding is not None:
        J = _embed_jet(model.embedding, J, tab)
    out = _core_jet(model.core, J, tab)
    if model.constraint is None or raw:
        return out
    A, Dj = _constraint_jets(model.constraint, X, S, lap_axes)
    return [_add(a, p) for a, p in zip(A, _product(Dj, out, tab))]


def _constraint_jets(constraint, X: torch.Tensor, S: tuple, lap_axes: tuple = ()) -> tuple:
    """Feature-major jets of A(X), D(X) from the constraint's symbolic derivatives: plain torch
    arithmetic on X, so they trace into a compiled step (even under torch.func) and fuse."""
    tab = _tables(S, lap_axes)
    pairs = [constraint.derivatives(X, g) for g in S]
    A = [a.t() / f for (a, _), f in zip(pairs, tab.factorials)]
    D = [d.t() / f for (_, d), f in zip(pairs, tab.factorials)]
    if lap_axes:
        lap = [constraint.derivatives(X, unit_index(X.shape[1], i, 2)) for i in lap_axes]
        A.append(sum(a for a, _ in lap).t() / 2)
        D.append(sum(d for _, d in lap).t() / 2)
    return A, D


class TaylorMode:
    """Engine: every derivative of the plan from one Taylor-mode forward pass."""

    name = "taylor"

    def __call__(self, net, X: torch.Tensor, plan, create_graph: bool = True) -> dict:
        if not supports(net):
            from .errors import TrainingError
            raise TrainingError(f"the taylor engine supports pinnkit's MLP/modified MLP with tanh or "
                                f"sin (and Fourier features, box hard constraints), not {type(net).__name__}"
                                f"{'' if not hasattr(net, 'core') else ' with ' + type(net.core).__name__}; "
                                "use engine='autograd' or 'auto'")
        S = plan.jet_set
        tab = _tables(S, plan.lap_axes)
        J = model_jet(net, X, S, lap_axes=plan.lap_axes)
        fields = plan.fields
        out = {}
        n = X.shape[0]

        def column(c, f):
            if c is None:
                return X.new_zeros(n)
            return c[fields.index(f)].expand(n)
        for f, g in plan.regular:
            i = tab.pos[g]
            v = column(J[i], f)
            out[(f, g)] = v * tab.factorials[i] if tab.factorials[i] != 1 else v
        for f in plan.laplacians:
            out[("lap", f)] = 2 * column(J[tab.lap], f)
        if not create_graph:
            out = {k: v.detach() for k, v in out.items()}
        return out
