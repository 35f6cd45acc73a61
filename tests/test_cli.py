"""The command line: the documented commands work; bad input gives one line and status 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

from gradsweep.cli import main

SMALL = """
objective = { name = "quadratic", k = 1.0 }
estimators = ["score", "pathwise"]
wrt = ["theta", "sigma"]
N = [10, 100]
theta = { start = -1, stop = 1, num = 3 }
sigma = [0.5, 2.0]
reps = 8
seed = 1
"""


def gradsweep_exe() -> str:
    return str(Path(sys.executable).with_name("gradsweep"))


def test_run_show_plot_as_installed_command(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "out.nc"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    r = subprocess.run([gradsweep_exe(), "run", str(cfg), "-o", str(out), "--threads", "1"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    ds = xr.open_dataset(out)
    assert dict(ds.sizes) == {"N": 2, "theta": 3, "sigma": 2, "estimator": 2, "wrt": 2, "pair": 1, "combination": 2}
    assert "\r" not in r.stderr  # no progress bar when stderr is not a terminal
    r = subprocess.run([gradsweep_exe(), "show", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "exact_var" in r.stdout and "quadratic" not in r.stderr
    r = subprocess.run([gradsweep_exe(), "plot", str(out), "-o", str(tmp_path / "f.png")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_writes_table_netcdf_and_plot(tmp_path):
    r = CliRunner().invoke(main, ["demo", "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "exact variance ratio score/pathwise: d/dtheta: 21.75x" in r.stdout
    ds = xr.open_dataset(tmp_path / "demo.nc")
    assert list(ds.N.values) == [10, 100, 1000, 10000, 100000] and int(ds["count"].min()) == 100
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_a_k_grid_runs_shows_and_plots_against_k(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text(SMALL.replace("k = 1.0 }", "k = { start = -1, stop = 1, num = 3 } }"))
    out = tmp_path / "k.nc"
    runner = CliRunner()
    r = runner.invoke(main, ["run", str(cfg), "-o", str(out)])
    assert r.exit_code == 0, r.output
    with xr.open_dataset(out) as ds:
        assert dict(ds.sizes) == {"N": 2, "k": 3, "theta": 3, "sigma": 2, "estimator": 2, "wrt": 2, "pair": 1, "combination": 2}
        assert ds.attrs["objective"] == "(x - k)**2"
    r = runner.invoke(main, ["show", str(out)])
    assert r.exit_code == 0 and "2 N x 3 k x 3 theta x 2 sigma" in r.stdout
    for name in ("k.png", "k.pdf", "k.svg"):
        r = runner.invoke(main, ["plot", str(out), "-o", str(tmp_path / name), "--x", "k", "--N", "100", "--theta", "0", "--dpi", "60"])
        assert r.exit_code == 0, r.output
    assert (tmp_path / "k.pdf").read_bytes()[:5] == b"%PDF-" and b"<svg" in (tmp_path / "k.svg").read_bytes()[:400]
    r = runner.invoke(main, ["plot", str(out), "-o", str(tmp_path / "n.png"), "--k", "1"])
    assert r.exit_code == 0, r.output
    plain = tmp_path / "plain.nc"
    cfg.write_text(SMALL)
    assert runner.invoke(main, ["run", str(cfg), "-o", str(plain)]).exit_code == 0
    for args in (["--x", "k"], ["--k", "1"]):
        r = runner.invoke(main, ["plot", str(plain), "-o", str(tmp_path / "bad.png"), *args])
        assert r.exit_code == 2 and "k" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "bad.png").exists()


def test_plot_takes_unsorted_grids_and_refuses_what_it_cannot_show(tmp_path):
    cfg = tmp_path / "u.toml"
    cfg.write_text(SMALL.replace("theta = { start = -1, stop = 1, num = 3 }", "theta = [1.0, -1.0, 0.0]"))
    out = tmp_path / "u.nc"
    runner = CliRunner()
    assert runner.invoke(main, ["run", str(cfg), "-o", str(out)]).exit_code == 0
    r = runner.invoke(main, ["plot", str(out), "-o", str(tmp_path / "u.png"), "--theta", "0.0"])
    assert r.exit_code == 0, r.output
    for args in (["--theta", "nan"], ["--sigma", "inf"]):
        r = runner.invoke(main, ["plot", str(out), "-o", str(tmp_path / "bad.png"), *args])
        assert r.exit_code == 2 and "finite" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "bad.png").exists()


def test_a_grid_too_large_for_memory_is_refused_up_front(tmp_path):
    cfg = tmp_path / "huge.toml"
    cfg.write_text("theta = { start = 0, stop = 1, num = 100000 }\nsigma = { start = 1, stop = 2, num = 100000 }\nN = [10]\n")
    for args in (["-o", str(tmp_path / "h.nc")], ["--dry-run"]):
        r = CliRunner().invoke(main, ["run", str(cfg), *args])
        assert r.exit_code == 2 and "10,000,000,000 cells need about" in r.stderr and "GiB" in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.toml"]


def test_values_float64_cannot_hold_are_named_once_without_warnings(tmp_path):
    """theta = 1e80: x^2 is 1e160 and the score estimate's variance overflows; the run says so in one line
    (the suite turns any RuntimeWarning into an error)."""
    cfg = tmp_path / "big.toml"
    cfg.write_text("theta = [1e80]\nN = [10]\nreps = 4\n")
    r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(tmp_path / "big.nc")])
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if line.startswith("gradsweep: note:")]
    assert len(notes) == 1 and "overflow float64" in notes[0] and "theta=1e+80" in notes[0], r.stderr
    with xr.open_dataset(tmp_path / "big.nc") as ds:  # pathwise d/dtheta stays exact: 2 x is representable
        assert float(ds["exact_var"].sel(estimator="pathwise", wrt="theta").squeeze()) == pytest.approx(0.4)


BAD = {
    "k list for square": ("objective = { name = 'square', k = [1.0, 2.0] }\n", "takes no parameters"),
    "unknown key": ("colour = 'red'\n", "unknown config key(s): colour"),
    "unknown estimator": ("estimators = ['score', 'reinforce']\n", "unknown estimator 'reinforce'"),
    "sigma zero": ("sigma = [0.0]\n", "sigma must be > 0"),
    "sigma negative": ("sigma = [1.0, -2.0]\n", "sigma must be > 0"),
    "N zero": ("N = [0, 10]\n", "N must be >= 1"),
    "reps one": ("reps = 1\n", "reps must be >= 2"),
    "theta nan": ("theta = [nan]\n", "finite"),
    "sigma inf": ("sigma = [inf]\n", "finite"),
    "grid nan": ("theta = { start = 0, stop = nan, num = 3 }\n", "finite"),
    "unknown objective": ("objective = 'sine'\n", "unknown objective 'sine'"),
    "not toml": ("N = [10\n", "not valid TOML"),
    "wrong type": ("reps = 'many'\n", "reps must be an integer"),
    "N fraction": ("N = [10, 10.5]\n", "N must be whole numbers, got [10.0, 10.5]"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_exits_2_with_one_line(tmp_path, case):
    text, message = BAD[case]
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    out = tmp_path / "out.nc"
    r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(out)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradsweep: error:") and message in lines[0], r.stderr
    assert "Traceback" not in r.output
    assert not out.exists() and list(tmp_path.iterdir()) == [cfg]


def test_unreadable_config_exits_2(tmp_path):
    for path in (tmp_path / "missing.toml", tmp_path):
        r = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "o.nc")])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "cannot read" in r.stderr
    assert not (tmp_path / "o.nc").exists()


def test_existing_output_is_not_touched_without_overwrite(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("N = [10]\nreps = 2\n")
    out = tmp_path / "out.nc"
    out.write_bytes(b"keep me")
    r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(out)])
    assert r.exit_code == 2 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"keep me"
    r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(out), "--overwrite"])
    assert r.exit_code == 0 and xr.open_dataset(out).sizes["N"] == 1


def test_missing_output_folder_and_bad_threads(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("N = [10]\nreps = 2\n")
    r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(tmp_path / "nope" / "o.nc")])
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(tmp_path / "o.nc"), "--threads", "0"])
    assert r.exit_code == 2 and "threads" in r.stderr and not (tmp_path / "o.nc").exists()


def test_show_refuses_a_file_that_is_not_netcdf(tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_text("not a netCDF file")
    for path in (junk, tmp_path / "missing.nc"):
        r = CliRunner().invoke(main, ["show", str(path)])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "cannot read" in r.stderr


def test_dry_run_describes_the_work_and_writes_nothing(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL)
    r = CliRunner().invoke(main, ["run", str(cfg), "--dry-run", "-o", str(tmp_path / "o.nc")])
    assert r.exit_code == 0, r.output
    # 2 N x 3 theta x 2 sigma cells; (10 + 100) * 3 * 2 * 8 replicates = 5280 samples
    assert "cells: 12 (2 N x 3 theta x 2 sigma)" in r.stdout and "samples: 5,280" in r.stdout
    assert "estimated run time:" in r.stdout and "KiB" in r.stdout.split("memory: at least ")[1].splitlines()[0]
    assert list(tmp_path.iterdir()) == [cfg]


def test_run_without_output_exits_2(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("N = [10]\nreps = 2\n")
    r = CliRunner().invoke(main, ["run", str(cfg)])
    assert r.exit_code == 2 and "--output" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_cold_first_run_says_it_is_compiling(tmp_path):
    """With an empty numba cache, the progress bar names the compile instead of sitting silent."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(SMALL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [gradsweep_exe(), "run", str(cfg), "-o", str(tmp_path / "o.nc"), "--progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "compiling or loading kernels" in r.stderr
    assert any((tmp_path / "cache").rglob("*.nbi"))  # it really compiled into the empty cache


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "gradsweep", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Usage: gradsweep" in done.stdout and "run" in done.stdout


def test_help_and_version_answer_as_the_full_command_line_does_without_importing_gradsweep():
    """The entry point (gradsweep_cli) answers --help and --version itself: the same text and status as
    gradsweep.cli, and neither numba, xarray nor gradsweep imported (they take about a second)."""
    import click

    import gradsweep_cli

    runner = CliRunner()
    for args in gradsweep_cli.QUICK:
        quick = runner.invoke(gradsweep_cli.overview(), args, prog_name="gradsweep")
        full = runner.invoke(main, args, prog_name="gradsweep")
        assert (quick.exit_code, quick.output) == (full.exit_code, full.output), args
    ctx = click.Context(main)
    listed = {name: " ".join(main.get_command(ctx, name).help.split("\n\n")[0].split()) for name in main.list_commands(ctx)}
    assert gradsweep_cli.COMMANDS == listed
    probe = "import sys, gradsweep_cli\ntry:\n    gradsweep_cli.main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
    probe += "print(code, *(m in sys.modules for m in ('gradsweep', 'numba', 'xarray')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 False False False"
    r = subprocess.run([gradsweep_exe(), "show", "no-such.nc"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "gradsweep: error: cannot read 'no-such.nc': no such file"
