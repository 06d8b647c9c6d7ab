"""The compiled training step: loss, gradients and the Adam update as one torch.compile graph
(`AdamStep`), the second phase's loss and gradient as another (`ValueAndGrad`), and when
``compile="auto"`` compiles at all (`decide_compile`); the Gauss–Newton system of the loss's
residuals (`GaussNewton`) for the Levenberg–Marquardt phase.

Both graphs differentiate with torch.func, not the autograd engine: a `LossModule` holds the
network, the problem's parameters and its learned terms, and its forward is the trainer's
weighted loss, so `torch.func.functional_call` can swap in the tensors it differentiates.
Nested autograd's double backward cannot be compiled, so compiling needs the Taylor engine.
"""

from __future__ import annotations

import types
from typing import Callable

import torch

__all__ = ["LossModule", "AdamStep", "ValueAndGrad", "GaussNewton", "compile_function", "decide_compile",
           "own_code", "STEP_COMPILE_OPTIONS", "AUTO_COMPILE_MIN_STEPS", "SECOND_PHASE_WEIGHT"]

# Inductor options of the whole-step compile on a CPU (compile=True): a C++ wrapper instead of
# the Python one that calls the step's ~50 kernels (a Burgers step 1.67 vs 1.83 ms here).
# The nn.Module guards stay: without them (skip_guard_on_all_nn_modules_unsafe, 1.47 vs
# 1.53 ms) a second pk.train in the same process reused the first run's graph, with the
# first trainer's loss (its weighting, weights, causal settings) on the new parameters.
STEP_COMPILE_OPTIONS = {"cpp_wrapper": True}
# compile="auto" compiles a phase when its steps (Adam) or SECOND_PHASE_WEIGHT x its iterations
# (second phase) reach this.
# Measured on problems/burgers.py (4 x 20, 2780 points, one thread, other jobs on the machine;
# docs/benchmarks.md; measured with the nn.Module guards off): compiling took 29-30 s with an
# empty Inductor cache and 3.2-3.4 s with a warm one, and saved 3.5-6.5 ms per step (eager
# 8.2-11.7 ms, compiled 4.7-5.2 ms): it pays after ~700 steps warm and ~6500 cold. 5000
# keeps short runs eager (never slower, cold or warm), costs a first, cold run of 5000 steps
# at most ~7 s, and wins on every later run; larger problems save more per step, so
# compiling pays for them sooner still.
AUTO_COMPILE_MIN_STEPS = 5000
# a second-phase iteration saves ~2.5x what an Adam step saves: 1.3 loss + gradient
# evaluations (line search) in float64; measured on Burgers with 6000 points, SSBFGS: 49 ms
# per iteration eager vs ~22 ms compiled, against 18 vs ~8-11 ms per Adam step
SECOND_PHASE_WEIGHT = 2.5


def decide_compile(option: bool | str, work: float, compilable: bool) -> bool | str:
    """``compile="auto"``: compile a phase when its ``work`` (Adam steps, or
    SECOND_PHASE_WEIGHT x second-phase iterations) reaches `AUTO_COMPILE_MIN_STEPS` and the
    loss can be compiled; otherwise the option as given. The trainer asks once per phase: each
    phase compiles a graph of its own (float32 Adam step, float64 loss and gradient), so each
    must pay for its own compile."""
    if option != "auto":
        return option
    return compilable and work >= AUTO_COMPILE_MIN_STEPS


def own_code(fn: Callable) -> Callable:
    """``fn`` with a copy of its code object: a function dynamo caches on its own."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                              fn.__defaults__, fn.__closure__)


def compile_function(fn: Callable, compile: bool | str, device: torch.device,
                     cpu_options: dict = STEP_COMPILE_OPTIONS) -> Callable:
    """torch.compile of a whole-step function with ``compile``'s mode, or ``cpu_options`` on
    a CPU.

    The function gets a code object of its own: dynamo keeps its compiled graphs per code
    object, so each run gets its own cache (and recompile budget) instead of piling guarded
    variants onto one shared entry until the recompile limit turns it eager."""
    fn = own_code(fn)
    if isinstance(compile, str):
        return torch.compile(fn, mode=compile)
    options = dict(cpu_options) if device.type == "cpu" else {}
    return torch.compile(fn, options=options)


def traced_all_reduce(grads: dict) -> dict:
    """Data parallel: the sum over the ranks of each gradient, as one flat functional
    collective that torch.compile traces into the whole-step graph (gloo and NCCL)."""
    import torch.distributed as dist
    import torch.distributed._functional_collectives as funcol
    names = list(grads)
    flat = funcol.all_reduce(torch.cat([grads[n].reshape(-1) for n in names]), "sum",
                             dist.group.WORLD)
    out, i = {}, 0
    for n in names:
        k = grads[n].numel()
        out[n] = flat[i:i + k].view_as(grads[n])
        i += k
    return out


class _Trainable(torch.nn.Module):
    """The network, the problem's unknown parameters and its learned terms under one module,
    so that `torch.func.functional_call` swaps in the tensors a graph differentiates."""

    def __init__(self, model: torch.nn.Module, params: torch.nn.ParameterDict,
                 networks: torch.nn.ModuleDict) -> None:
        super().__init__()
        self.model, self.params, self.networks = model, params, networks

    def trainable(self) -> list[tuple[str, torch.Tensor]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]


class LossModule(_Trainable):
    """The trainable modules whose forward is ``loss(batches, lam, point_weights) -> (total,
    terms)``: ``loss`` must use these very submodules, so that the tensors
    `torch.func.functional_call` swaps in are the ones it differentiates."""

    def __init__(self, model: torch.nn.Module, params: torch.nn.ParameterDict,
                 networks: torch.nn.ModuleDict, loss: Callable) -> None:
        super().__init__(model, params, networks)
        self.__dict__["loss"] = loss          # a plain attribute, not a submodule

    def forward(self, batches: dict, lam: torch.Tensor, point_weights) -> tuple:
        total, terms = self.loss(batches, lam, point_weights)
        return total, {k: v.detach() for k, v in terms.items()}


def _grad_and_loss(module: LossModule) -> Callable:
    def loss(ps: dict, batches: dict, lam: torch.Tensor, point_weights) -> tuple:
        return torch.func.functional_call(module, ps, (batches, lam, point_weights))
    return torch.func.grad_and_value(loss, has_aux=True)


def adam_state(adam: torch.optim.Adam, p: torch.Tensor) -> tuple:
    """(step, exp_avg, exp_avg_sq) of ``p`` in ``adam``, created as torch's Adam would on its
    first step."""
    st = adam.state[p]
    if not st:
        st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
        st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return st["step"], st["exp_avg"], st["exp_avg_sq"]


class AdamStep:
    """The whole Adam step as one compiled graph: loss, gradients (torch.func) and the Adam
    update, with no autograd engine, no .grad tensors and no separate optimizer kernels in
    between (on a 2-core CPU about 1.4x faster per step than a compiled loss with autograd and
    fused Adam, scripts/bench.py). It updates the parameters and ``adam``'s own state tensors
    in place, so the eager path (loss-weight updates), checkpoints and L-BFGS see exactly
    what torch's Adam would have left. `supported` says whether ``adam``'s settings allow it
    (no amsgrad, weight decay or maximize)."""

    def __init__(self, module: LossModule, adam: torch.optim.Adam, compile: bool | str,
                 device: torch.device, dtype: torch.dtype, data_parallel: bool) -> None:
        group = adam.param_groups[0]
        self.supported = not (group["amsgrad"] or group["weight_decay"] or group["maximize"])
        self.adam = adam
        self.params = module.trainable()
        self.lr = torch.zeros((), dtype=dtype, device=device)
        b1, b2 = group["betas"]
        eps = group["eps"]
        grad_and_loss = _grad_and_loss(module)
        reduce = traced_all_reduce if data_parallel else None

        def step(ps: dict, states: list, lr: torch.Tensor, batches: dict, lam: torch.Tensor,
                 point_weights) -> tuple:
            grads, (total, terms) = grad_and_loss(ps, batches, lam, point_weights)
            if reduce is not None:   # data parallel: the global gradient, inside the graph
                grads = reduce(grads)
            for (name, p), (t, m, v) in zip(ps.items(), states):
                g = grads[name]
                t.add_(1)
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                # torch.optim.Adam's update, term for term (bias corrections in p's precision:
                # the step counter is float32)
                k = t.to(p.dtype)
                denom = v.sqrt() / (1 - b2 ** k).sqrt() + eps
                p.sub_((lr / (1 - b1 ** k)) * m / denom)
            return total.detach(), terms
        self.fn = compile_function(step, compile, device)

    def __call__(self, batches: dict, lam: torch.Tensor, point_weights) -> tuple:
        """One step at the optimizer's current learning rate: (total, terms). Raises whatever
        compiling raised."""
        ps = {n: p.detach() for n, p in self.params}
        states = [adam_state(self.adam, p) for _, p in self.params]
        self.lr.fill_(self.adam.param_groups[0]["lr"])
        with torch.no_grad():
            # λ (loss weights) as an argument: the graph must see every update
            out = self.fn(ps, states, self.lr, batches, lam, point_weights)
        # the lr scheduler checks that the optimizer stepped (else it warns, once)
        self.adam._opt_called = True
        return out


class ValueAndGrad:
    """(loss, [gradients of the trainable tensors]) as one compiled torch.func graph: the
    second phase's objective."""

    def __init__(self, module: LossModule, compile: bool | str, device: torch.device) -> None:
        self.names = [n for n, _ in module.trainable()]
        names = self.names
        grad_and_loss = _grad_and_loss(module)

        def value_and_grad(ps: dict, batches: dict, lam: torch.Tensor, point_weights) -> tuple:
            grads, (total, _) = grad_and_loss(ps, batches, lam, point_weights)
            return total.detach(), [grads[n] for n in names]
        # Inductor's default Python wrapper: the C++ one saves ~0.1 ms a call, nothing beside
        # a 30 ms float64 iteration, and its C++ build cost the first run on a machine ~40 s
        # of wall time (Burgers, empty cache: 91.0 s against 52.3 s for 500 iterations,
        # warm 23.4 vs 21.4 s; docs/benchmarks.md 5.3)
        self.fn = compile_function(value_and_grad, compile, device, cpu_options={})

    def __call__(self, params: list, batches: dict, lam: torch.Tensor, point_weights) -> tuple:
        ps = dict(zip(self.names, (p.detach() for p in params)))
        with torch.no_grad():
            return self.fn(ps, batches, lam, point_weights)


class _Rows(_Trainable):
    """The trainable modules whose forward is ``fn(batch)`` (a group of `GaussNewton` rows)."""

    def forward(self, fn: Callable, batch: dict) -> torch.Tensor:
        return fn(batch)


class GaussNewton:
    """The loss as a sum of squares, loss = Σ r², assembled for a Gauss–Newton step:
    ``(loss, JᵀJ, Jᵀr)`` with J the Jacobian of the rows r with respect to the trainable
    tensors (flattened in `trainable` order, as the second phase sees them).

    The rows come in groups, each a function of ONE point: ``fn(batch) -> (k,)`` for a batch
    whose tensors have a leading dimension of 1 (k residuals of that point, already scaled so
    their squares sum to its share of the loss). A group's Jacobian is the per-point gradient,
    `torch.func.jacrev` under `torch.func.vmap` over the points, so a chunk of points costs
    about one backward pass rather than one per row; J is never held whole (chunks of at most
    ``chunk_bytes`` of Jacobian are accumulated into JᵀJ). The derivatives inside ``fn`` must
    come from the Taylor engine (torch.func cannot differentiate through nested autograd)."""

    def __init__(self, model: torch.nn.Module, params: torch.nn.ParameterDict,
                 networks: torch.nn.ModuleDict, chunk_bytes: int = 64 * 2**20) -> None:
        self.module = _Rows(model, params, networks)
        self.names = [n for n, _ in self.module.trainable()]
        self.chunk_bytes = chunk_bytes

    def __call__(self, groups: list[tuple[Callable, dict]]) -> tuple:
        """``groups``: (fn, batch) pairs, batch tensors with a leading dimension of points."""
        module, names = self.module, self.names
        ps = {n: p.detach() for n, p in module.trainable()}
        P = sum(p.numel() for p in ps.values())
        ref = next(iter(ps.values()))
        A = torch.zeros(P, P, dtype=ref.dtype, device=ref.device)
        g = torch.zeros(P, dtype=ref.dtype, device=ref.device)
        loss = torch.zeros((), dtype=ref.dtype, device=ref.device)
        for fn, batch in groups:
            def rows(ps: dict, point: dict, fn=fn) -> tuple:
                r = torch.func.functional_call(module, ps, (fn, point))
                return r, r
            per_point = torch.func.vmap(torch.func.jacrev(rows, has_aux=True), in_dims=(None, 0))
            n = len(next(iter(batch.values())))
            k = None
            at = 0
            while at < n:
                m = n - at if k is None else max(1, self.chunk_bytes // (8 * k * P))
                if k is None:    # the first chunk tells k; keep it small
                    m = min(m, 64)
                part = {key: v[at:at + m].unsqueeze(1) for key, v in batch.items()}
                with torch.enable_grad():
                    jac, r = per_point(ps, part)
                k = r.shape[1]
                J = torch.cat([jac[name].reshape(r.numel(), -1) for name in names], dim=1)
                r = r.reshape(-1).detach()
                _add_gram(A, J)
                g.addmv_(J.T, r)
                loss += r @ r
                at += m
        if A.device.type == "cpu":     # _add_gram filled the upper triangle
            A = A.triu() + A.triu(1).T
        return loss, A, g


def _add_gram(A: torch.Tensor, J: torch.Tensor) -> None:
    """A += JᵀJ; on a CPU only A's upper triangle, by BLAS syrk (half of a matrix product's
    work, which is most of a Levenberg–Marquardt iteration)."""
    if A.device.type != "cpu":
        A.addmm_(J.T, J)
        return
    from scipy.linalg import blas
    syrk = blas.dsyrk if A.dtype == torch.float64 else blas.ssyrk
    # J is C-contiguous (rows, n): Fortran sees its transpose, (n, rows), without a copy
    a = J.detach().contiguous().numpy().T
    c = A.numpy().T           # A's storage as Fortran sees it: its transpose, upper <-> lower
    syrk(1.0, a, beta=1.0, c=c, trans=0, lower=1, overwrite_c=1)
