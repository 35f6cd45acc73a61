"""The dask backend: bit-identical to the CPU backend on a real LocalCluster."""

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import distributed
import numpy as np
from click.testing import CliRunner

import gradsweep
from gradsweep.cli import main

# k and dim are swept: the workers get per-cell k values and dimensions
CFG = dict(
    objective={"name": "cos", "k": [1.1, 2.5]},
    estimators="all",
    N=[6, 2000, 70001],
    theta=[1.0],
    sigma=[0.7, 1.4],
    reps=30,
    seed=13,
    dim=[1, 3],
)


def test_two_worker_local_cluster_is_bit_identical_to_cpu(monkeypatch):
    from gradsweep import plan

    monkeypatch.setattr(plan, "BATCH_SAMPLES", 200_000)  # many tasks, finishing out of order
    expected = gradsweep.sweep(**CFG)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            got = gradsweep.sweep(backend="dask", client=client, **CFG)
    for v in ("mean", "var", "count", "m2", "m3", "m4", "pair_m2", "pair_m4"):
        np.testing.assert_array_equal(got[v].values, expected[v].values)


# --- a scheduler and workers started as separate processes on 127.0.0.1 ---------------------

DASK = [sys.executable, "-m", "dask"]


def _wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def external_cluster(tmp_path, n_workers):
    """``dask scheduler`` and ``n_workers`` ``dask worker --no-nanny`` processes on 127.0.0.1."""
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)]
    procs = [subprocess.Popen(scheduler, **quiet)]
    try:
        _wait_for(lambda: file.exists() and file.stat().st_size > 0, "the scheduler file")
        address = json.loads(file.read_text())["address"]
        worker = [*DASK, "worker", "--scheduler-file", str(file), "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard"]
        workers = [subprocess.Popen(worker, **quiet) for _ in range(n_workers)]
        procs += workers
        with distributed.Client(address) as client:
            client.wait_for_workers(n_workers, timeout=60)
            yield address, client, workers
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()


def test_cli_on_a_separately_started_scheduler_and_workers_is_bit_identical(tmp_path, monkeypatch):
    from gradsweep import plan

    monkeypatch.setattr(plan, "BATCH_SAMPLES", 200_000)
    (tmp_path / "s.toml").write_text(
        'seed = 13\nreps = 30\nN = [6, 2000, 70001]\ntheta = [0.0, 1.0]\nsigma = [0.7, 1.4]\n[objective]\nname = "cos"\nk = 1.1\n'
    )
    runner = CliRunner()
    cpu_run = runner.invoke(main, ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "cpu.nc")])
    assert cpu_run.exit_code == 0, cpu_run.output
    with external_cluster(tmp_path, 2) as (address, _, _):
        args = ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "dask.nc"), "--backend", "dask", "--scheduler", address]
        dask_run = runner.invoke(main, args)
    assert dask_run.exit_code == 0, dask_run.output
    import xarray as xr

    with xr.open_dataset(tmp_path / "cpu.nc") as a, xr.open_dataset(tmp_path / "dask.nc") as b:
        assert b.attrs["backend"] == "dask"
        for v in ("mean", "var", "count", "m2", "m3", "m4", "pair_m2", "pair_m4"):
            np.testing.assert_array_equal(b[v].values, a[v].values)


class CountingBar:
    """Stands in for the tqdm bar; records what the backend reports."""

    def __init__(self, total):
        self.total, self.n = total, 0

    def update(self, n):
        self.n += n

    def set_description_str(self, s):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_killing_a_worker_mid_run_is_survived_bit_identically(tmp_path, monkeypatch):
    from gradsweep import plan

    monkeypatch.setattr(plan, "BATCH_SAMPLES", 100_000)
    bars = []
    sweep_module = importlib.import_module("gradsweep.sweep")
    monkeypatch.setattr(sweep_module, "progress_bar", lambda total, enabled: bars.append(CountingBar(total)) or bars[-1])
    cfg = dict(CFG, reps=60)
    expected = gradsweep.sweep(**cfg)
    with external_cluster(tmp_path, 2) as (address, client, workers):
        victim = workers[0]
        addr = next(a for a, pid in client.run(os.getpid).items() if pid == victim.pid)
        result = {}
        run = threading.Thread(target=lambda: result.update(ds=gradsweep.sweep(backend="dask", scheduler=address, **cfg)))
        run.start()
        # kill worker 0 (SIGKILL, no nanny to restart it) while it holds a task
        _wait_for(lambda: client.processing().get(addr), "a task on the worker to kill")
        victim.send_signal(signal.SIGKILL)
        run.join(timeout=120)
        assert not run.is_alive()
        assert victim.wait() == -signal.SIGKILL
        assert len(client.scheduler_info()["workers"]) == 1
    got = result["ds"]
    for v in ("mean", "var", "count", "m2", "m3", "m4", "pair_m2", "pair_m4"):
        np.testing.assert_array_equal(got[v].values, expected[v].values)
    # the bar counts each sample once, although the dead worker's tasks ran again
    per_n = len(cfg["dim"]) * len(cfg["objective"]["k"]) * len(cfg["theta"]) * len(cfg["sigma"])
    assert bars[-1].n == bars[-1].total == cfg["reps"] * sum(cfg["N"]) * per_n


def test_without_dask_the_backend_exits_2_with_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    (tmp_path / "s.toml").write_text('N = [10]\ntheta = [1.0]\nsigma = [1.0]\nreps = 2\n[objective]\nname = "square"\n')
    out = CliRunner().invoke(main, ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "o.nc"), "--backend", "dask"])
    assert out.exit_code == 2
    assert (
        out.output.strip().splitlines()[-1]
        == "gradsweep: error: the dask backend needs dask.distributed: pip install '.[dask]' in a gradsweep checkout"
    )
    assert not (tmp_path / "o.nc").exists()


def test_readme_slurm_example_runs_against_a_stand_in_for_dask_jobqueue(tmp_path, monkeypatch):
    """The README's dask-jobqueue script, with SLURMCluster replaced by a LocalCluster of the same sizing."""
    import re
    import types
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    script = re.search(r"```python\n(# slurm_sweep.py.*?)```", text, re.S).group(1)
    seen = {}

    def slurm_cluster(*, cores, processes, job_cpu, job_script_prologue, **job):
        seen.update(cores=cores, processes=processes, job_cpu=job_cpu, prologue=job_script_prologue)
        cluster = distributed.LocalCluster(n_workers=0, threads_per_worker=cores, processes=True, dashboard_address=":0")
        cluster.scale = lambda jobs: distributed.LocalCluster.scale(cluster, min(jobs, 2))
        return cluster

    monkeypatch.setitem(sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=slurm_cluster))
    (tmp_path / "sweep.toml").write_text('N = [10, 1000]\ntheta = [1.0]\nsigma = [1.0, 2.0]\nreps = 20\n[objective]\nname = "square"\n')
    monkeypatch.chdir(tmp_path)
    exec(compile(script, "README.md", "exec"), {"__name__": "__main__"})
    assert seen == {"cores": 1, "processes": 1, "job_cpu": 32, "prologue": ["export NUMBA_NUM_THREADS=32"]}
    import xarray as xr

    with xr.open_dataset(tmp_path / "sweep.nc") as ds:
        expected = gradsweep.sweep(gradsweep.Config.from_toml(tmp_path / "sweep.toml"))
        np.testing.assert_array_equal(ds["mean"].values, expected["mean"].values)
