"""The compiled training step: loss, gradients and the first phase's update (Adam) as one
torch.compile graph (`WholeStep`), the second phase's loss and gradient as another
(`ValueAndGrad`), and when ``compile="auto"`` compiles at all (`decide_compile`); the
Gauss–Newton system of the loss's residuals (`GaussNewton`) for the Levenberg–Marquardt phase.

Both graphs differentiate with torch.func, not the autograd engine: a `LossModule` holds the
network, the problem's parameters and its learned terms, and its forward is the trainer's
weighted loss, so `torch.func.functional_call` can swap in the tensors it differentiates.
Nested autograd's double backward cannot be compiled, so compiling needs the Taylor engine.
"""

from __future__ import annotations

import os
import types
from typing import Callable

import torch

from .batches import Batches

__all__ = ["LossModule", "WholeStep", "LoopStep", "LOOP_STEPS", "ValueAndGrad", "GaussNewton", "compile_function",
           "decide_compile", "own_code", "compile_backend", "torch_compile", "cpu_options",
           "vector_isa_failed", "compile_error_line",
           "STEP_COMPILE_OPTIONS", "FAST_TANH_OPTIONS", "AUTO_COMPILE_MIN_STEPS", "SECOND_PHASE_WEIGHT"]

# Inductor options of the whole-step compile on a CPU (compile=True): a C++ wrapper instead of
# the Python one that calls the step's ~50 kernels (a Burgers step 1.67 vs 1.83 ms here).
# The nn.Module guards stay: without them (skip_guard_on_all_nn_modules_unsafe, 1.47 vs
# 1.53 ms) a second pk.train in the same process reused the first run's graph, with the
# first trainer's loss (its weighting, weights, causal settings) on the new parameters.
STEP_COMPILE_OPTIONS = {"cpp_wrapper": True}
# Inductor options of every float32 graph pinnkit compiles for a CPU, where the Taylor engine's
# tanh is a rational function (`pinnkit.taylor.tanh`): nodes of more than 30 operations (the
# polynomial) are stored once, not recomputed inside each kernel that reads them. A/B, fresh
# processes, one thread (docs/benchmarks.md 5.7.4): the compiled Adam step of Burgers
# (3 x 20, 2780 points) 1.96 ms against 2.30 with torch.tanh, Laplace 3-D 127-130 against
# 145-149 ms, Poisson 2-D a median 130 against 137 ms (processes vary by 10 % there); on
# Burgers the rational function without this option took 2.55 ms, the option with
# torch.tanh 2.47 ms.
FAST_TANH_OPTIONS = {"realize_opcount_threshold": 30}
# torch.compile backend of every pinnkit graph: Inductor (generated C++/CUDA kernels), unless
# the environment names another: PINNKIT_COMPILE_BACKEND=aot_eager traces the same graphs
# (dynamo, AOT autograd, functionalisation) and runs them with eager kernels, which skips
# Inductor's code generation (~40 s a cold graph here): the test suite uses it for the tests
# of dynamo-level behaviour, and it tells a user whether a failure is Inductor's.
BACKEND = os.environ.get("PINNKIT_COMPILE_BACKEND", "inductor")


def compile_backend() -> str:
    """The backend now in force (read at each compile, so that tests can switch it)."""
    return BACKEND


def torch_compile(fn: Callable, fullgraph: bool, mode: str | None = None,
                  options: dict | None = None) -> Callable:
    """torch.compile with `compile_backend()`: Inductor with ``mode`` or ``options`` (torch
    takes one of them), any other backend without either (they are Inductor's). In a process
    whose vector-ISA probe failed (`vector_isa_failed`), Inductor compiles without its on-disk
    caches."""
    if compile_backend() != "inductor":
        return torch.compile(fn, backend=compile_backend(), fullgraph=fullgraph)
    if options is not None:
        compiled = torch.compile(fn, options=options, fullgraph=fullgraph)
    else:
        compiled = torch.compile(fn, mode=mode, fullgraph=fullgraph)
    if not vector_isa_failed():
        return compiled

    def uncached(*args, **kwargs):
        # Inductor compiles at a call (the first, and each that fails a guard); the caches
        # are not Inductor options (torch.compile refuses them there), so each call sets them
        with torch.compiler.config.patch(force_disable_caches=True):
            return compiled(*args, **kwargs)
    return uncached


def compile_error_line(exc: BaseException) -> str:
    """"Type: line" of a failed compile, for a one-line message. dynamo's
    BackendCompilerFailed says only "backend='inductor' raised:" on its first line: its
    backend's exception is named too, and of a message the line that says "error:" (a C++
    compiler's) when there is one, else its first non-empty line, at most 200 characters."""
    def line(e: BaseException) -> str:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error:" in ln]
        return (errors or lines or [""])[0][:200]
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and inner is not exc:
        return f"{type(exc).__name__}: {type(inner).__name__}: {line(inner)}"
    return f"{type(exc).__name__}: {line(exc)}"


_ISA_FAILED: bool | None = None


def vector_isa_failed() -> bool:
    """Whether this process's Inductor found no vector ISA for its CPU kernels although the CPU
    has one (AVX2 or AVX-512, x86 Linux or Windows; elsewhere, and when the user chose the
    ISA by ATEN_CPU_CAPABILITY or Inductor's ``cpp.simdlen``, Inductor's answer stands).

    Inductor decides once per process, by building and loading a small test library in a
    child process (``torch._inductor.cpu_vec_isa``; the child has 60 s). When that probe
    failed on a CPU with AVX2, the process generated scalar kernels, but its on-disk graph
    cache, whose key does not include the probe's answer, still handed it the vectorized
    kernels of other processes, whose C++ build then failed ("'at::vec' has not been
    declared"): every such graph fell back to eager (.ci/run, twice: a test had left scripts/
    on sys.path, which the child inherits as PYTHONPATH, and scripts/operator.py shadowed the
    standard library's `operator` there). pinnkit therefore bypasses the caches in such a
    process, and warns once."""
    global _ISA_FAILED
    if _ISA_FAILED is None:
        _ISA_FAILED = _probe_failed()
        if _ISA_FAILED:
            import warnings
            warnings.warn("torch Inductor found no vector instruction set for this CPU in this "
                          "process (its probe failed), so pinnkit's compiled graphs get scalar "
                          "C++ kernels and are compiled without Inductor's on-disk cache"
                          + _shadowing_hint(), RuntimeWarning, stacklevel=3)
    return _ISA_FAILED


def _probe_failed() -> bool:
    import platform
    import sys
    from torch._inductor import config as inductor_config
    from torch._inductor import cpu_vec_isa
    if cpu_vec_isa.pick_vec_isa():
        return False
    if (sys.platform not in ("linux", "win32") or platform.machine() not in ("x86_64", "AMD64")
            or os.environ.get("ATEN_CPU_CAPABILITY") or inductor_config.cpp.simdlen is not None):
        return False
    flags = cpu_vec_isa.x86_isa_checker()
    return any(all(f in flags for f in str(isa).split())
               for isa in cpu_vec_isa.supported_vec_isa_list)


def _shadowing_hint() -> str:
    """The probe's child gets this process's sys.path as its PYTHONPATH: a folder there with
    a module named like the standard library's (scripts/operator.py) breaks it."""
    import sys
    for folder in sys.path:
        try:
            names = {f[:-3] for f in os.listdir(folder or ".") if f.endswith(".py")}
        except OSError:
            continue
        shadows = sorted(names & sys.stdlib_module_names)
        if shadows:
            return (f"; {os.path.join(folder or '.', shadows[0] + '.py')} on sys.path shadows "
                    f"the standard library's {shadows[0]!r} in the probe's child process")
    return ""


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


def cpu_options(dtype: torch.dtype, compile: bool | str, base: dict | None = None) -> dict:
    """Inductor options of a graph of ``dtype`` compiled for a CPU: ``base``, then the
    options of ``compile``'s mode when it names one, then `FAST_TANH_OPTIONS` for float32."""
    options = dict(base or {})
    if isinstance(compile, str):
        from torch._inductor import list_mode_options
        options.update(list_mode_options(compile))
    if dtype == torch.float32:
        options.update(FAST_TANH_OPTIONS)
    return options


def compile_function(fn: Callable, compile: bool | str, device: torch.device,
                     dtype: torch.dtype, cpp_wrapper: bool = True) -> Callable:
    """torch.compile of a whole-step function of ``dtype`` with ``compile``'s mode, or on a
    CPU with `cpu_options` (and `STEP_COMPILE_OPTIONS` when ``cpp_wrapper``).

    The function gets a code object of its own: dynamo keeps its compiled graphs per code
    object, so each run gets its own cache (and recompile budget) instead of piling guarded
    variants onto one shared entry until the recompile limit turns it eager.

    ``fullgraph=True``: the whole function is one graph or compiling fails (and the trainer
    runs eagerly, with a note). Partial graphs inside the torch.func gradient transform are
    not safe: frames compiled under an eager transform ("Unsupported functorch tracing
    attempt") once lost an inverse problem's parameter update without any error."""
    fn = own_code(fn)
    if device.type == "cpu":
        base = STEP_COMPILE_OPTIONS if cpp_wrapper and not isinstance(compile, str) else None
        return torch_compile(fn, fullgraph=True, options=cpu_options(dtype, compile, base))
    if isinstance(compile, str):
        return torch_compile(fn, fullgraph=True, mode=compile)
    return torch_compile(fn, fullgraph=True, options={})


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

    def forward(self, batches: Batches, lam: torch.Tensor, point_weights,
                values: dict | None = None) -> tuple:
        total, terms = self.loss(batches, lam, point_weights, values)
        return total, {k: v.detach() for k, v in terms.items()}


def param_values(ps: dict) -> dict:
    """{problem parameter name: tensor} of the ``params.*`` entries of a functional_call's
    tensors. The loss takes them as an argument instead of reading the swapped-in
    ParameterDict: under torch.compile (torch 2.13) that read returned the original
    parameter, whose gradient then came out zero and left it at its initial value."""
    return {n[len("params."):]: t for n, t in ps.items() if n.startswith("params.")}


def _grad_and_loss(module: LossModule) -> Callable:
    def loss(ps: dict, batches: Batches, lam: torch.Tensor, point_weights) -> tuple:
        return torch.func.functional_call(module, ps, (batches, lam, point_weights,
                                                       param_values(ps)))
    return torch.func.grad_and_value(loss, has_aux=True)


class WholeStep:
    """A first-phase step as one compiled graph: loss, gradients (torch.func) and the
    phase's update (`pinnkit.pinn.first_phase.FirstPhase.compiled_update`), with no autograd
    engine, no .grad tensors and no separate optimizer kernels in between (Adam on a 2-core
    CPU: about 1.4x faster per step than a compiled loss with autograd and fused Adam,
    scripts/bench.py). It updates the parameters and the phase's own state tensors in place,
    so the eager path (loss-weight updates), checkpoints and the second phase see exactly
    what the phase's eager step would have left. `supported` says whether the phase has a
    compiled update with its settings."""

    def __init__(self, module: LossModule, phase, compile: bool | str,
                 device: torch.device, dtype: torch.dtype, data_parallel: bool) -> None:
        update = phase.compiled_update()
        self.supported = update is not None
        self.phase = phase
        self.params = module.trainable()
        self.lr = torch.zeros((), dtype=dtype, device=device)
        grad_and_loss = _grad_and_loss(module)
        reduce = traced_all_reduce if data_parallel else None

        def step(ps: dict, states: list, lr: torch.Tensor, batches: Batches, lam: torch.Tensor,
                 point_weights) -> tuple:
            grads, (total, terms) = grad_and_loss(ps, batches, lam, point_weights)
            if reduce is not None:   # data parallel: the global gradient, inside the graph
                grads = reduce(grads)
            update(ps, grads, states, lr)
            return total.detach(), terms
        self.fn = compile_function(step, compile, device, dtype) if self.supported else None

    def __call__(self, batches: Batches, lam: torch.Tensor, point_weights) -> tuple:
        """One step at the phase's current learning rate: (total, terms). Raises whatever
        compiling raised."""
        ps = {n: p.detach() for n, p in self.params}
        states = self.phase.states([p for _, p in self.params])
        self.lr.fill_(self.phase.lr)
        with torch.no_grad():
            # λ (loss weights) as an argument: the graph must see every update
            out = self.fn(ps, states, self.lr, batches, lam, point_weights)
        self.phase.compiled_step_done()
        return out


#: the most first-phase steps one call of `LoopStep` takes
LOOP_STEPS = 16
# Inductor's on-disk graph cache skips graphs with a while_loop unless the operator is marked
# cacheable. The key of a graph holds the code of its loop's body and condition (a loop of 8
# and one of 16 steps got entries of their own), so the mark is safe for these graphs; it
# makes a warm first call 9 s instead of ~45 s (Burgers, this 2-core CPU).
LOOP_COMPILE_OPTIONS = {"unsafe_marked_cacheable_functions": ["torch.ops.higher_order.while_loop"]}


class LoopStep:
    """Up to `LOOP_STEPS` first-phase steps in one compiled call: `WholeStep`'s loss,
    gradients and update as the body of a ``while_loop`` over a step count given at each call
    (one graph for every count). Dynamo's guards, the wrapper and the trainer's Python then
    run once a call instead of once a step, which is ~10 % of a compiled Burgers step
    (docs/benchmarks.md 5.7.6). The steps' learning rates come as a vector, and the
    parameters and the phase's state tensors are written back in place after the loop, so
    the trainer, checkpoints and the eager path see what as many `WholeStep` calls would
    have left. On a CPU and on one process only (``supported``): the trainer takes
    `WholeStep` elsewhere."""

    def __init__(self, module: LossModule, phase, compile: bool | str,
                 device: torch.device, dtype: torch.dtype, term_names: list) -> None:
        from torch._higher_order_ops.while_loop import while_loop
        math = phase.update_math()
        self.supported = math is not None and device.type == "cpu"
        self.phase = phase
        self.params = module.trainable()
        self.lrs = torch.zeros(LOOP_STEPS, dtype=dtype, device=device)
        self.count = torch.zeros((), dtype=torch.int64, device=device)
        names = [n for n, _ in self.params]
        grad_and_loss = _grad_and_loss(module)

        def steps(ps: list, states: list, lrs: torch.Tensor, count: torch.Tensor,
                  batches: Batches, lam: torch.Tensor, point_weights) -> tuple:
            k, widths = len(ps), [len(s) for s in states]

            def unflatten(flat: tuple) -> list:
                out, i = [], 0
                for w in widths:
                    out.append(tuple(flat[i:i + w]))
                    i += w
                return out

            def cond(i, *carry):
                return i < count

            def body(i, *carry):
                P, S = carry[:k], unflatten(carry[k:k + sum(widths)])
                grads, (total, terms) = grad_and_loss(dict(zip(names, P)), batches, lam,
                                                      point_weights)
                lr = lrs.index_select(0, i.reshape(1)).reshape(())
                new_p, new_s = [], []
                for name, p, state in zip(names, P, S):
                    q, st = math(p, grads[name], state, lr)
                    new_p.append(q)
                    new_s += st
                return (i + 1, *new_p, *new_s, total.detach(),
                        *(terms[t].detach() for t in term_names))
            # the loss values' start: distinct tensors (the loop's inputs must not alias)
            start = (torch.zeros_like(count), *ps, *(t for st in states for t in st),
                     *(lrs.new_zeros(()) for _ in range(1 + len(term_names))))
            out = while_loop(cond, body, start)
            for target, new in zip([*ps, *(t for st in states for t in st)], out[1:]):
                # 0-dim tensors through 1-element views (`first_phase._as_vectors`)
                (target.view(1) if target.dim() == 0 else target).copy_(new.reshape(target.shape))
            total, terms = out[-1 - len(term_names)], out[-len(term_names):]
            return total, dict(zip(term_names, terms))
        self.fn = None
        if self.supported:
            fn = own_code(steps)
            self.fn = torch_compile(fn, fullgraph=True, options=cpu_options(
                dtype, compile, {**STEP_COMPILE_OPTIONS, **LOOP_COMPILE_OPTIONS}))

    def __call__(self, batches: Batches, lam: torch.Tensor, point_weights, n: int = 1) -> tuple:
        """``n`` (1 to `LOOP_STEPS`) steps from the phase's learning rates: (total, terms)
        of the last. Raises whatever compiling raised."""
        if not 1 <= n <= LOOP_STEPS:
            raise ValueError(f"a LoopStep call takes 1 to {LOOP_STEPS} steps, not {n}")
        ps = [p.detach() for _, p in self.params]
        states = self.phase.states([p for _, p in self.params])
        self.lrs[:n].copy_(torch.tensor(self.phase.upcoming_lrs(n), dtype=self.lrs.dtype))
        self.count.fill_(n)
        with torch.no_grad():
            out = self.fn(ps, states, self.lrs, self.count, batches, lam, point_weights)
        self.phase.compiled_step_done()
        return out


class ValueAndGrad:
    """(loss, [gradients of the trainable tensors]) as one compiled torch.func graph: the
    second phase's objective."""

    def __init__(self, module: LossModule, compile: bool | str, device: torch.device) -> None:
        self.names = [n for n, _ in module.trainable()]
        names = self.names
        grad_and_loss = _grad_and_loss(module)

        def value_and_grad(ps: dict, batches: Batches, lam: torch.Tensor, point_weights) -> tuple:
            grads, (total, _) = grad_and_loss(ps, batches, lam, point_weights)
            return total.detach(), [grads[n] for n in names]
        # Inductor's default Python wrapper: the C++ one saves ~0.1 ms a call, nothing beside
        # a 30 ms float64 iteration, and its C++ build cost the first run on a machine ~40 s
        # of wall time (Burgers, empty cache: 91.0 s against 52.3 s for 500 iterations,
        # warm 23.4 vs 21.4 s; docs/benchmarks.md 5.3)
        dtype = next(p for _, p in module.trainable()).dtype
        self.fn = compile_function(value_and_grad, compile, device, dtype, cpp_wrapper=False)

    def __call__(self, params: list, batches: Batches, lam: torch.Tensor, point_weights) -> tuple:
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
