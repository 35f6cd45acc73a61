"""Writing files under hostile use: one writer per file, no special files replaced, links written through,
nothing truncated or left behind. Each refusal exits 2 with one line and changes nothing."""

import os
import signal
import subprocess
import sys

import pytest
import xarray as xr
from click.testing import CliRunner

from gradsweep import files, report
from gradsweep.cli import main

CFG = "objective = 'square'\nN = [10, 100]\ntheta = [0.0, 1.0]\nreps = 6\nseed = 3\n"
HOLD = (
    "import sys, time; from gradsweep import files\n"
    "with files.writing(sys.argv[1], 'a test holder'):\n    print('ready', flush=True); time.sleep(600)\n"
)


def refused(r, *words):
    lines = r.stderr.strip().splitlines()
    return r.exit_code == 2 and len(lines) == 1 and all(w in lines[0] for w in words)


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CFG)
    return path


def run(cfg, out, *args):
    return CliRunner().invoke(main, ["run", str(cfg), "-o", str(out), *args])


def test_a_second_writer_is_refused_naming_the_first_until_it_is_gone(tmp_path, cfg):
    out = tmp_path / "r.nc"
    assert run(cfg, out).exit_code == 0
    before = out.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        for args in (["run", str(cfg), "-o", str(out), "--overwrite"], ["extend", str(out), "--reps", "3"], ["merge", str(out), str(out)]):
            r = CliRunner().invoke(main, [*args, *(["--overwrite"] if args[0] == "merge" else [])])
            assert refused(r, "is being written by", f"process {holder.pid}", "a test holder"), (args, r.output)
        assert out.read_bytes() == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    # the kernel dropped the dead holder's lock; its lock file is taken over and removed
    r = CliRunner().invoke(main, ["extend", str(out), "--reps", "3"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "r.nc"]


def test_special_files_are_refused_and_left_alone(tmp_path, cfg):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert refused(run(cfg, fifo, "--overwrite"), "not a regular file")
    assert refused(CliRunner().invoke(main, ["plot", str(tmp_path / "x.nc"), "-o", str(fifo)]))
    assert fifo.is_fifo()
    assert refused(run(cfg, tmp_path, "--overwrite"), "is a directory")
    before = cfg.read_bytes()
    assert refused(run(cfg, cfg, "--overwrite"), "is the config file itself")
    assert cfg.read_bytes() == before


def test_writes_through_a_symlink_land_in_its_target(tmp_path, cfg):
    real = tmp_path / "real.nc"
    link = tmp_path / "link.nc"
    assert run(cfg, real).exit_code == 0
    link.symlink_to(real.name)
    r = CliRunner().invoke(main, ["extend", str(link), "--reps", "4"])
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and os.readlink(link) == real.name
    with xr.open_dataset(real) as ds:
        assert int(ds.attrs["replicates"]) == 10
    assert refused(run(cfg, link), "exists")
    assert run(cfg, link, "--overwrite").exit_code == 0 and link.is_symlink()


def test_temporary_files_of_dead_writers_are_removed(tmp_path, cfg):
    out = tmp_path / "r.nc"
    dead = tmp_path / f".r.nc.{2**22 + 12345}.tmp.nc"  # above Linux's largest pid: no such process
    dead.write_bytes(b"half a file")
    mine = tmp_path / f".r.nc.{os.getppid()}.tmp.nc"  # a live process's (this test's parent): kept
    mine.write_bytes(b"in progress")
    assert run(cfg, out).exit_code == 0
    assert not dead.exists() and mine.exists()


def test_plot_names_its_format_and_replaces_atomically(tmp_path, cfg, monkeypatch):
    out = tmp_path / "r.nc"
    assert run(cfg, out).exit_code == 0
    for name in ("noext", "x.xyz"):
        assert refused(CliRunner().invoke(main, ["plot", str(out), "-o", str(tmp_path / name)]), ".png, .pdf or .svg")
    png = tmp_path / "f.png"
    assert CliRunner().invoke(main, ["plot", str(out), "-o", str(png)]).exit_code == 0
    before = png.read_bytes()

    def half_written(ds, path, **kw):
        path.write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "plot", half_written)
    r = CliRunner().invoke(main, ["plot", str(out), "-o", str(png), "--overwrite"])
    assert r.exit_code == 2 and r.stderr == "gradsweep: error: No space left on device\n"  # no ': None
    assert png.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "f.png", "r.nc"]


def test_lock_files_say_who_holds_them(tmp_path):
    out = tmp_path / "r.nc"
    with files.writing(out, "checking"):
        assert f"process {os.getpid()}" in files.holder(out) and "checking" in files.holder(out)
        with pytest.raises(files.LockedError, match="is being written by"), files.writing(out, "again"):
            pass
    assert list(tmp_path.iterdir()) == []


def _edit(path, fn):
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        fn(nc)


EDITS = {
    "config": lambda nc: nc.setncattr("config", nc.getncattr("config").replace('"seed": 3', '"seed": 4')),
    "count": lambda nc: nc["count"].__setitem__((0, 0, 0, 0, 0), 3),
    "m2": lambda nc: nc["m2"].__setitem__((1, 1, 0, 0, 0), 1.0),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_results_are_refused_by_every_command(tmp_path, cfg, edit):
    out = tmp_path / "r.nc"
    assert run(cfg, out).exit_code == 0
    _edit(out, EDITS[edit])
    before = out.read_bytes()
    commands = (["extend", str(out), "--reps", "2"], ["show", str(out)], ["plot", str(out), "-o", str(tmp_path / "f.png")])
    for args in (*commands, ["merge", str(tmp_path / "m.nc"), str(out)]):
        assert refused(CliRunner().invoke(main, args), "changed after gradsweep wrote it"), args
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "r.nc"]


def test_files_without_a_checksum_are_still_checked_for_sense(tmp_path, cfg):
    out = tmp_path / "r.nc"
    assert run(cfg, out).exit_code == 0
    _edit(out, lambda nc: (nc.delncattr("checksum"), nc["count"].__setitem__((0, 0, 0, 0, 0), 3)))
    assert refused(CliRunner().invoke(main, ["extend", str(out), "--reps", "2"]), "replicate counts do not match")
    _edit(out, lambda nc: nc.setncattr("config", "{not json"))
    assert refused(CliRunner().invoke(main, ["extend", str(out), "--reps", "2"]), "not valid JSON")
    plain = tmp_path / "plain.nc"
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(plain)
    for args in (["show", str(plain)], ["plot", str(plain), "-o", str(tmp_path / "f.png")], ["show", str(tmp_path)]):
        assert refused(CliRunner().invoke(main, args), "not"), args


def test_an_edited_or_foreign_checkpoint_is_refused(tmp_path, cfg):
    import numpy as np

    from gradsweep.checkpoint import Checkpoint, checkpoint_path
    from gradsweep.config import Config

    out = tmp_path / "r.nc"
    config = Config.from_toml(cfg)
    Checkpoint(out, config, resume=False).maybe_save(999, np.zeros((config.n_cells, 4, 5)), force=True)  # the key fits, done does not
    assert refused(run(cfg, out, "--resume"), "does not fit this run")
    with np.load(checkpoint_path(out)) as data:
        fields = dict(data)
    np.savez(checkpoint_path(out), **{**fields, "done": np.array(1)})  # edited by hand
    assert refused(run(cfg, out, "--resume"), "was changed after it was written")
    assert not out.exists()
