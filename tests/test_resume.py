"""Checkpoints: kill a run at any moment, resume it, get the same bits."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import gradsweep
from gradsweep import checkpoint as checkpoint_module
from gradsweep import cpu, dataset, plan, stops
from gradsweep.checkpoint import Checkpoint, checkpoint_path
from gradsweep.cli import main
from gradsweep.config import Config
from gradsweep.extend import extend

CFG_TEXT = (
    "objective = { name = 'cos', k = [0.8, 2.0] }\nestimators = 'all'\n"
    "N = [50, 3000]\ntheta = [1.0]\nsigma = [0.5, 1.5]\ndim = [1, 2]\nreps = 40\nseed = 17\n"
)
VARS = ("mean", "var", "count", "m2", "m3", "m4", "pair_mean", "pair_m2", "pair_m3", "pair_m4")


def same(a, b):
    for v in VARS:
        np.testing.assert_array_equal(a[v].values, b[v].values)


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(plan, "BATCH_SAMPLES", 20_000)
    monkeypatch.setattr(plan, "UNIT_SAMPLES", 10_000)


@pytest.mark.parametrize("kill_at", [1, 3, 7])
def test_interrupted_run_resumes_to_identical_result(tmp_path, monkeypatch, small_batches, kill_at):
    cfg = Config.from_toml(_write(tmp_path))
    expected = gradsweep.sweep(cfg)
    real, calls = cpu.compute_units, []

    def dying(*args):
        calls.append(1)
        if len(calls) == kill_at:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(cpu, "compute_units", dying)
    out = tmp_path / "o.nc"
    with pytest.raises(KeyboardInterrupt):
        gradsweep.sweep(cfg, checkpoint=Checkpoint(out, cfg, resume=False, interval=0))
    assert checkpoint_path(out).exists() == (kill_at > 1)
    monkeypatch.setattr(cpu, "compute_units", real)
    resumed = gradsweep.sweep(cfg, checkpoint=Checkpoint(out, cfg, resume=True, interval=0))
    same(resumed, expected)


def test_kill_during_final_write_loses_nothing(tmp_path, monkeypatch):
    cfg_path = _write(tmp_path)
    out = tmp_path / "o.nc"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "write", killed)
    r = CliRunner().invoke(main, ["run", str(cfg_path), "-o", str(out)])
    assert r.exit_code == 130 and not out.exists() and checkpoint_path(out).exists()
    monkeypatch.undo()
    computed = []
    monkeypatch.setattr(cpu, "compute_units", lambda *a: computed.append(1))
    r = CliRunner().invoke(main, ["run", str(cfg_path), "-o", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    assert computed == []  # everything came from the checkpoint
    monkeypatch.undo()
    same(xr.open_dataset(out), gradsweep.sweep(Config.from_toml(cfg_path)))
    assert not checkpoint_path(out).exists()


def test_a_replicate_larger_than_a_batch_runs_in_short_kernel_calls(tmp_path, monkeypatch):
    """Python sees Ctrl-C only between kernel calls: a 4e9-sample replicate (a batch of its own) is cut
    into calls of at most a batch's samples; and however the items are cut, the bits are the same."""
    big = plan.make_plan((1, 1), np.array([4_000_000_000]), 0, 1)
    _, _, start, stop, _ = plan.chunk_items(big)
    samples = stop - start
    cut = cpu.calls(samples)
    assert len(cut) > 100 and cut[0].start == 0 and cut[-1].stop == samples.size
    assert all(a.stop == b.start for a, b in zip(cut, cut[1:], strict=False))
    assert max(samples[c].sum() for c in cut) <= plan.BATCH_SAMPLES
    assert all(c.stop - c.start >= cpu.MIN_CALL_ITEMS for c in cut[:-1])

    cfg = Config.from_toml(_write(tmp_path)).replace(N=[3000])  # chunks only
    expected = gradsweep.sweep(cfg)
    real, sizes = cpu.kernels, []

    def recording(*args):
        chunk_sums, unit_states, pair_states = real(*args)

        def counted(*a):
            sizes.append(a[2].size)
            return chunk_sums(*a)

        return counted, unit_states, pair_states

    monkeypatch.setattr(cpu, "kernels", recording)
    monkeypatch.setattr(cpu, "MIN_CALL_ITEMS", 1)
    monkeypatch.setattr(plan, "BATCH_SAMPLES", 7000)  # two chunk items of 3000 samples
    same(gradsweep.sweep(cfg), expected)
    assert sizes and max(sizes) == 2 and sum(sizes) == 8 * 40  # every item of the 8 cells once


@pytest.fixture
def ctrl_c():
    """Ctrl-C raising KeyboardInterrupt, as in a terminal: a process started in the background inherits it ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_stop_while_kernels_compile_is_held_and_stops_the_run_after_the_compile(tmp_path, monkeypatch, small_batches, ctrl_c):
    """llvmlite runs Python callbacks inside the compiler and drops their exceptions: Ctrl-C there was
    printed as "ignored" and the run went on to the end. Held instead, it stops the run at the next
    kernel call's end; the resumed run is the same bits."""
    cfg = Config.from_toml(_write(tmp_path))
    expected = gradsweep.sweep(cfg)
    real, calls = cpu.compute_units, []

    def stopped_while_compiling(*args):
        calls.append(1)
        if len(calls) == 2:
            monkeypatch.setattr(stops, "compiling", lambda: True)
            try:
                signal.raise_signal(signal.SIGINT)  # handled here, as in a compiler callback: held, not raised
            except KeyboardInterrupt:
                pass  # what llvmlite does with it
            monkeypatch.setattr(stops, "compiling", lambda: False)
        return real(*args)

    monkeypatch.setattr(cpu, "compute_units", stopped_while_compiling)
    out = tmp_path / "o.nc"
    with pytest.raises(KeyboardInterrupt):
        gradsweep.sweep(cfg, checkpoint=Checkpoint(out, cfg, resume=False, interval=0))
    assert len(calls) == 2 and not stops._held  # stopped in the batch the stop came in
    monkeypatch.setattr(cpu, "compute_units", real)
    same(gradsweep.sweep(cfg, checkpoint=Checkpoint(out, cfg, resume=True)), expected)


def test_outside_a_compile_a_stop_is_raised_at_once_and_handlers_are_restored(ctrl_c):
    before = signal.getsignal(signal.SIGINT)
    with stops.watching():
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert not stops._held
        stops.check()  # nothing held: no stop
    assert signal.getsignal(signal.SIGINT) is before


def test_checkpoint_refusals(tmp_path, monkeypatch):
    cfg_path = _write(tmp_path)
    out = tmp_path / "o.nc"
    cfg = Config.from_toml(cfg_path)
    Checkpoint(out, cfg, resume=False).maybe_save(1, np.zeros((cfg.n_cells, 4, 5)), force=True)
    r = CliRunner().invoke(main, ["run", str(cfg_path), "-o", str(out)])
    assert r.exit_code == 2 and "--resume" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    cfg_path.write_text(CFG_TEXT.replace("seed = 17", "seed = 18"))
    r = CliRunner().invoke(main, ["run", str(cfg_path), "-o", str(out), "--resume"])
    assert r.exit_code == 2 and "different config" in r.stderr
    cfg_path.write_text(CFG_TEXT)
    monkeypatch.setattr(checkpoint_module, "__version__", "0.0.0+other")
    r = CliRunner().invoke(main, ["run", str(cfg_path), "-o", str(out), "--resume"])
    assert r.exit_code == 2 and "gradsweep version" in r.stderr
    monkeypatch.undo()
    checkpoint_path(out).write_bytes(b"garbage")
    r = CliRunner().invoke(main, ["run", str(cfg_path), "-o", str(out), "--resume"])
    assert r.exit_code == 2 and "cannot read checkpoint" in r.stderr
    assert not out.exists()


def test_sigkill_at_several_moments_then_resume(tmp_path):
    """A real SIGKILL of the command, at several moments, then --resume: bit-identical."""
    text = "objective = 'square'\nN = [200000]\ntheta = [0.0, 1.0, 2.0]\nsigma = [1.0]\nreps = 600\nseed = 5\n"
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(text)
    out = tmp_path / "o.nc"
    exe = str(Path(sys.executable).with_name("gradsweep"))
    env = {**os.environ, "GRADSWEEP_CHECKPOINT_SECONDS": "0"}
    kills = 0
    for wait in (0.0, 0.2, 0.4):
        args = [exe, "run", str(cfg_path), "-o", str(out), "--threads", "1"] + (["--resume"] if kills else [])
        before = checkpoint_path(out).stat().st_mtime_ns if checkpoint_path(out).exists() else None
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60

        def progressed(before=before):  # a new checkpoint was written by this process
            return checkpoint_path(out).exists() and checkpoint_path(out).stat().st_mtime_ns != before

        while not progressed() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(wait)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            break
    assert kills >= 1, "the run finished before it could be killed; make it longer"
    assert not out.exists() and checkpoint_path(out).exists()
    r = subprocess.run([exe, "run", str(cfg_path), "-o", str(out), "--resume"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    same(xr.open_dataset(out), gradsweep.sweep(Config.from_toml(cfg_path)))


def test_an_interrupted_extend_resumes_to_the_same_bits_and_leaves_the_file_alone(tmp_path, monkeypatch, small_batches):
    cfg = Config.from_toml(_write(tmp_path))
    path = dataset.write(gradsweep.sweep(cfg), tmp_path / "r.nc")
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint_module, "INTERVAL", 0.0)  # a checkpoint after every batch
    real, calls = cpu.compute_units, []

    def dying(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(cpu, "compute_units", dying)
    r = CliRunner().invoke(main, ["extend", str(path), "--reps", "30"])
    assert r.exit_code == 130 and "--resume" in r.stderr
    assert path.read_bytes() == before and checkpoint_path(path).exists()
    r = CliRunner().invoke(main, ["extend", str(path), "--reps", "30"])
    assert r.exit_code == 2 and "--resume" in r.stderr and path.read_bytes() == before
    r = CliRunner().invoke(main, ["extend", str(path), "--reps", "20", "--resume"])
    assert r.exit_code == 2 and "different config" in r.stderr and path.read_bytes() == before
    calls.clear()
    monkeypatch.setattr(cpu, "compute_units", lambda *a: calls.append(1) or real(*a))
    r = CliRunner().invoke(main, ["extend", str(path), "--reps", "30", "--resume"])
    assert r.exit_code == 0, r.output
    assert not checkpoint_path(path).exists()
    total = len(plan.make_plan(cfg.grid_shape, cfg.N, 40, 30).batches())
    assert 0 < len(calls) < total  # the batches saved before the interrupt were not redone
    monkeypatch.setattr(cpu, "compute_units", real)
    with xr.open_dataset(path) as got:
        same(got, extend(gradsweep.sweep(cfg), 30))


def _write(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(CFG_TEXT)
    return p


def test_slow_saves_are_spaced_so_they_cost_at_most_two_percent(tmp_path, monkeypatch):
    from gradsweep import checkpoint as ck

    cfg = Config.from_dict({"N": [10], "reps": 2})
    real_savez = np.savez

    def slow_savez(*args, **kwargs):
        time.sleep(0.05)
        real_savez(*args, **kwargs)

    monkeypatch.setattr(ck.np, "savez", slow_savez)
    c = Checkpoint(tmp_path / "o.nc", cfg, resume=False, interval=0.0)
    state = np.zeros((cfg.n_cells, 4, 5))
    c.maybe_save(1, state)
    assert c.wait >= 0.05 / ck.MAX_SHARE  # 2.5 s before the next save, not 0
    c.maybe_save(2, state)  # too soon: skipped
    assert c._read()[0] == 1
    c.maybe_save(3, state, force=True)  # the final save is never skipped
    assert c._read()[0] == 3


def test_sigterm_saves_and_says_how_to_resume(tmp_path):
    """A batch scheduler's SIGTERM stops a run as Ctrl-C does: exit 143, one line naming --resume, the checkpoint kept."""
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text("objective = 'square'\nN = [200000]\ntheta = [0.0, 1.0, 2.0]\nsigma = [1.0]\nreps = 600\nseed = 5\n")
    out = tmp_path / "o.nc"
    exe = str(Path(sys.executable).with_name("gradsweep"))
    env = {**os.environ, "GRADSWEEP_CHECKPOINT_SECONDS": "0"}
    proc = subprocess.Popen([exe, "run", str(cfg_path), "-o", str(out), "--threads", "1"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not checkpoint_path(out).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be stopped; make it longer"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("gradsweep: error: terminated;") and "--resume" in err
    assert not out.exists() and checkpoint_path(out).exists()
    r = subprocess.run([exe, "run", str(cfg_path), "-o", str(out), "--resume"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    same(xr.open_dataset(out), gradsweep.sweep(Config.from_toml(cfg_path)))


def test_a_stop_signal_during_the_final_write_waits_for_a_complete_file(tmp_path, monkeypatch):
    real = dataset.write

    def interrupted_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the file is being written
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset, "write", interrupted_write)
    out = tmp_path / "o.nc"
    r = CliRunner().invoke(main, ["run", str(_write(tmp_path)), "-o", str(out)])
    assert r.exit_code == 0 and "held until the output was complete" in r.stderr, r.output
    assert not checkpoint_path(out).exists()
    same(xr.open_dataset(out), gradsweep.sweep(Config.from_toml(_write(tmp_path))))
