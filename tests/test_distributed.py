"""Data-parallel training (pinnkit.distributed, DESIGN §9): two gloo ranks on this CPU train
exactly what one process trains on the union of their points."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import pinnkit as pk
from pinnkit.cli import load_problem_file
from pinnkit.distributed import Shard

from conftest import ROOT

HEAT = str(ROOT / "problems" / "heat1d.py")
# float64 throughout, odd point counts (shards of unequal size), K Adam + K L-BFGS
BASE = dict(steps=12, lbfgs_steps=12, width=8, depth=2, interior_points=63, boundary_points=15,
            initial_points=17, dtype="float64", lbfgs_dtype="float64", log_every=4, quiet=True,
            seed=3)
OPTIONS = {
    "plain": {},
    "weighted": dict(loss_weighting="gradnorm", weight_every=4, point_weighting="rba",
                     rba_every=2, causal_eps=1.0, causal_bins=4, adaptive="rar", adaptive_every=6,
                     adaptive_points=5, adaptive_candidates=40),
    "relobralo": dict(loss_weighting="relobralo", weight_every=2, relobralo_saudade=0.5),
    "ntk_resample": dict(loss_weighting="ntk", weight_every=5, ntk_points=6, resample_every=5,
                         time_windows=2),
    # the compiled whole Adam step with the all-reduce traced into its graph, and the causal
    # weights' collectives inside the compiled loss (slow: cold compilations, ~3 min here)
    "compiled": dict(compile=True, engine="taylor", loss_weighting="gradnorm", weight_every=4,
                     point_weighting="rba", rba_every=2, causal_eps=1.0, causal_bins=4,
                     adaptive="rar", adaptive_every=6, adaptive_points=5, adaptive_candidates=40),
    "ssbfgs": dict(optimizer="ssbfgs"),      # the second phase by pinnkit.optim
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flat(sol) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in sol.model.parameters()]).numpy()


def _join(rank, world, port):
    """This spawned process as rank ``rank`` of a local gloo group, one thread."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)


def _worker(rank, world, port, options, out):
    _join(rank, world, port)
    try:
        problem, _ = load_problem_file(HEAT)
        sol = pk.train(problem, **options)
        np.save(os.path.join(out, f"rank{rank}.npy"), _flat(sol))
        np.save(os.path.join(out, f"loss{rank}.npy"), np.array(sol.history["loss"]))
        assert (sol.world_size, sol.backend) == (world, "gloo")
        assert not [m for m in sol.messages if "failed" in m], sol.messages
    finally:
        dist.destroy_process_group()
    # results are on disk: leave without the interpreter's teardown, where a gloo thread
    # still being joined aborted one rank once in a full-suite run ("terminate called
    # without an active exception", SIGABRT after a passing run)
    os._exit(0)


def _run_ranks(tmp_path, options, world=2):
    mp.spawn(_worker, args=(world, _free_port(), options, str(tmp_path)), nprocs=world, join=True)
    return [np.load(tmp_path / f"rank{r}.npy") for r in range(world)], \
        [np.load(tmp_path / f"loss{r}.npy") for r in range(world)]


SPIRAL = str(ROOT / "problems" / "spiral_node.py")
# odd batch (the ranks' shares differ: 4 + 3 sub-trajectories), float64, a few Adam steps; a
# fixed-step solver (an adaptive one chooses its steps from the error of the whole batch it
# integrates, so a rank's share takes other steps than the full batch: equal to the tolerance)
ODE_OPTIONS = dict(method="ode", steps=6, lbfgs_steps=0, batch_time=5, batch_size=7, log_every=3,
                   dtype="float64", quiet=True, seed=2, ode_solver="rk4")


def _ode_worker(rank, world, port, runs, out):
    _join(rank, world, port)
    try:
        problem, _ = load_problem_file(SPIRAL)
        for i, options in enumerate(runs):
            try:
                sol = pk.train(problem, **options)
            except pk.TrainingError as exc:
                np.save(os.path.join(out, f"error{i}_{rank}.npy"), np.array(str(exc)))
            else:
                flat = torch.cat([p.detach().reshape(-1) for p in sol.func.parameters()]).numpy()
                np.save(os.path.join(out, f"params{i}_{rank}.npy"), flat)
                assert (sol.world_size, sol.backend) == (world, "gloo")
    finally:
        dist.destroy_process_group()
    os._exit(0)


def test_ode_two_ranks_split_the_batch_and_equal_one_process(tmp_path):
    """method='ode' with mini-batches: the ranks integrate their shares of each step's
    sub-trajectories; the all-reduced gradient is the one-process batch's. The whole-trajectory
    mode has nothing to split: a clear refusal on every rank."""
    problem, _ = load_problem_file(SPIRAL)
    torch.set_num_threads(1)
    single = pk.train(problem, **ODE_OPTIONS)
    ref = torch.cat([p.detach().reshape(-1) for p in single.func.parameters()]).numpy()
    runs = [ODE_OPTIONS, {**ODE_OPTIONS, "batch_time": 0}]
    mp.spawn(_ode_worker, args=(2, _free_port(), runs, str(tmp_path)), nprocs=2, join=True)
    a, b = (np.load(tmp_path / f"params0_{r}.npy") for r in range(2))
    assert np.array_equal(a, b)
    assert np.max(np.abs(a - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))
    for r in range(2):
        msg = str(np.load(tmp_path / f"error1_{r}.npy"))
        assert "batch_time=0 integrates one whole trajectory" in msg


def test_shard_rows_and_gather_are_inverse():
    a = np.arange(11 * 2).reshape(11, 2)
    shards = [Shard(3, r, "gloo").rows(a) for r in range(3)]
    assert sum(len(s) for s in shards) == 11
    union = np.empty_like(a)
    for r, s in enumerate(shards):
        union[r::3] = s
    assert np.array_equal(union, a)
    assert Shard().rows(a) is a and not Shard().active


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "compiled"
                                  else n for n in sorted(OPTIONS)])
def test_two_ranks_equal_one_process_on_the_union(tmp_path, name):
    options = {**BASE, **OPTIONS[name]}
    torch.set_num_threads(1)
    problem, _ = load_problem_file(HEAT)
    single = pk.train(problem, **options)
    assert single.world_size == 1
    params, losses = _run_ranks(tmp_path, options)
    # the ranks take identical steps: bit-identical parameters and loss histories
    assert np.array_equal(params[0], params[1])
    assert np.array_equal(losses[0], losses[1])
    # ... equal to one process on the union of their points (sums in another order)
    ref = _flat(single)
    assert np.max(np.abs(params[0] - ref)) <= 1e-8 * max(1.0, np.max(np.abs(ref))), name
    assert np.allclose(losses[0], single.history["loss"], rtol=1e-8, atol=0)


def _torchrun(args, **kw):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port", str(_free_port()), str(ROOT / "scripts" / "solve.py"), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PINNKIT_DIST_TIMEOUT="20")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)


FAST = ["--width", "8", "--depth", "2", "--interior-points", "63", "--boundary-points", "15",
        "--initial-points", "17", "--dtype", "float64", "--set", "lbfgs_dtype=float64",
        "--set", "log_every=4", "--set", "checkpoint_every=4", "--quiet"]


def test_torchrun_resume_with_one_and_two_ranks(tmp_path):
    """A 2-rank run stopped after 8 of 16 Adam steps resumes with 2 ranks and with 1 rank, and
    both continuations reach what an uninterrupted 2-rank run reaches."""
    import json
    full = tmp_path / "full"
    p = _torchrun([HEAT, "--out", str(full), "--steps", "16", "--lbfgs-steps", "0", *FAST],
                  timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads((full / "report.json").read_text())
    assert report["train"]["world_size"] == 2 and report["train"]["backend"] == "gloo"
    loss_full = report["train"]["final_loss"]
    half = tmp_path / "half"
    p = _torchrun([HEAT, "--out", str(half), "--steps", "8", "--lbfgs-steps", "0", *FAST],
                  timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    import shutil
    one = tmp_path / "one"
    shutil.copytree(half, one)
    p = _torchrun([HEAT, "--out", str(half), "--steps", "16", "--lbfgs-steps", "0", "--resume",
                   *FAST], timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    p1 = subprocess.run([sys.executable, str(ROOT / "scripts" / "solve.py"), HEAT, "--out",
                         str(one), "--steps", "16", "--lbfgs-steps", "0", "--resume", *FAST],
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert p1.returncode == 0, p1.stderr[-3000:]
    for out, world in ((half, 2), (one, 1)):
        r = json.loads((out / "report.json").read_text())
        assert r["train"]["world_size"] == world
        assert abs(r["train"]["final_loss"] - loss_full) <= 1e-9 * loss_full, (world, r["train"])


def test_a_killed_rank_ends_the_job_naming_it(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port", str(_free_port()), str(ROOT / "scripts" / "solve.py"), HEAT,
           "--out", str(tmp_path / "out"), "--steps", "100000", "--lbfgs-steps", "0", *FAST,
           "--set", "compile=false"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PINNKIT_DIST_TIMEOUT="20")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    workers: list = []
    try:
        # wait for both ranks to be training (their checkpoint appears every 4 steps)
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "out" / "checkpoint.pt").exists():
            time.sleep(0.5)
        assert (tmp_path / "out" / "checkpoint.pt").exists(), "training never started"
        # torchrun's agent is the process we started; the two ranks are its children
        ranks = subprocess.run(["pgrep", "-P", str(proc.pid)],
                               capture_output=True, text=True).stdout.split()
        workers = [int(p) for p in ranks]
        assert len(workers) == 2, ranks
        victim = max(workers)
        with open(f"/proc/{victim}/environ", "rb") as fh:
            env_of = dict(v.split(b"=", 1) for v in fh.read().split(b"\0") if b"=" in v)
        rank = int(env_of[b"RANK"])
        t_kill = time.time()
        os.kill(victim, 9)
        _, err = proc.communicate(timeout=60)
        took = time.time() - t_kill
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        for pid in workers:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    assert proc.returncode != 0
    assert took < 60
    # torchrun's failure summary names the rank that died, its exit code and pid
    assert f"rank      : {rank} (local_rank: {rank})" in err, err[-2000:]
    assert f"exitcode  : -9 (pid: {victim})" in err, err[-2000:]
    print(f"killed rank {rank}: job ended after {took:.1f} s")


OPERATOR_SMALL = dict(modes=6, width=8, layers=2, batch_size=7, n_test=8, lr=3e-3, epochs=3,
                      quiet=True, seed=1)


def _operator_worker(rank, world, port, path, out):
    _join(rank, world, port)
    try:
        om = pk.train_operator(path, **OPERATOR_SMALL)
        flat = torch.cat([p.detach().reshape(-1) for p in om.net.parameters()]).numpy()
        np.save(os.path.join(out, f"op{rank}.npy"), flat)
        np.save(os.path.join(out, f"ophist{rank}.npy"), np.array(om.history["train"]))
    finally:
        dist.destroy_process_group()
    os._exit(0)


def test_operator_two_ranks_split_each_batch(tmp_path):
    """train_operator under a process group: the ranks take their shares of each batch (7
    samples: 4 + 3) and all-reduce the gradient, which is the one-process batch's."""
    from test_operator import GRF, HEAT
    torch.set_num_threads(1)
    path = tmp_path / "h32.h5"
    pk.dataset(HEAT, GRF, n=30, resolution=32, path=path, workers=0, quiet=True)
    single = pk.train_operator(path, **OPERATOR_SMALL)
    ref = torch.cat([p.detach().reshape(-1) for p in single.net.parameters()]).numpy()
    mp.spawn(_operator_worker, args=(2, _free_port(), str(path), str(tmp_path)), nprocs=2,
             join=True)
    a, b = (np.load(tmp_path / f"op{r}.npy") for r in range(2))
    assert np.array_equal(a, b)                 # the ranks took identical steps
    # float32 sums in another order, through 9 Adam steps
    assert np.max(np.abs(a - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))
    assert np.allclose(np.load(tmp_path / "ophist0.npy"), single.history["train"], rtol=1e-5)


def test_operator_cli_under_torchrun_equals_one_process(tmp_path):
    """scripts/operator.py under torchrun: rank 0 makes the datasets while rank 1 waits, both
    train data parallel, rank 0 alone writes the outputs; the validation error equals a
    one-process run's (the union of the ranks' shares of every batch is the batch)."""
    problem = tmp_path / "heat_op.py"
    problem.write_text(
        "import pinnkit as pk\nx, t = pk.coords('x t')\nu = pk.field('u', x, t)\n"
        "u0 = pk.input_field('u0', x)\n"
        "problem = pk.Problem('heat_op', pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.01),\n"
        "                     [u.diff(t) - u.diff(x, 2)], [pk.Periodic(u, x), pk.Initial(u, u0)])\n"
        "samplers = {'u0': pk.GaussianRandomField(sigma=10.0, tau=3.0, alpha=2.0)}\n"
        "options = {'n_train': 8, 'n_val': 2, 'n_test': 2, 'resolution': 32, 'modes': 4,\n"
        "           'width': 8, 'layers': 2, 'epochs': 3, 'batch_size': 4, 'quiet': True,\n"
        "           'speed_samples': 1}\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PINNKIT_DIST_TIMEOUT="20")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--master_port", str(_free_port()), str(ROOT / "scripts" / "operator.py"),
                          str(problem), "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run([sys.executable, str(ROOT / "scripts" / "operator.py"), str(problem),
                          "--out", str(tmp_path / "one")], capture_output=True, text=True,
                         env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    reports = [json.loads((tmp_path / d / "report.json").read_text()) for d in ("two", "one")]
    a, b = (r["train"]["validation_l2re"] for r in reports)
    assert a == pytest.approx(b, rel=1e-4), (a, b)
    assert [r["train"]["world_size"] for r in reports] == [2, 1]
    assert reports[0]["train"]["backend"] == "gloo" and reports[0]["data"]["n_train"] == 8
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())
