"""The dask backend: bit-identical to the CPU backend on a real LocalCluster."""

import distributed
import numpy as np

import gradsweep

CFG = dict(objective={"name": "cos", "k": 1.1}, N=[6, 2000, 70001], theta=[0.0, 1.0], sigma=[0.7, 1.4], reps=30, seed=13)


def test_two_worker_local_cluster_is_bit_identical_to_cpu(monkeypatch):
    from gradsweep import plan

    monkeypatch.setattr(plan, "BATCH_SAMPLES", 200_000)  # many tasks, finishing out of order
    expected = gradsweep.sweep(**CFG)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            got = gradsweep.sweep(backend="dask", client=client, **CFG)
    for v in ("mean", "var", "count", "m2", "m3", "m4"):
        np.testing.assert_array_equal(got[v].values, expected[v].values)
