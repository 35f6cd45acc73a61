"""The ``gradsweep`` command line.

Bad input exits with status 2 and one line on stderr, and writes nothing.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from pathlib import Path

import click

from .config import Config, ConfigError
from .files import check_writable, replacing, writing

DEMO = {
    "objective": "square",
    "estimators": ["score", "pathwise"],
    "wrt": ["theta", "sigma"],
    "N": [10, 100, 1000, 10000, 100000],
    "theta": [2.0],
    "sigma": [1.0],
    "reps": 100,
    "seed": 0,
}


#: The image formats ``plot`` writes, by file suffix.
IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def fail(message: str, code: int = 2):
    click.echo(f"gradsweep: error: {message}", err=True)
    sys.exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a batch scheduler sends before SIGKILL), handled as Ctrl-C is, with exit status 143."""


def _terminate(signum, frame):
    raise Terminated


def _stopped(e: KeyboardInterrupt) -> tuple[str, int]:
    return ("terminated", 143) if isinstance(e, Terminated) else ("interrupted", 130)


@contextlib.contextmanager
def held_signals():
    """Hold Ctrl-C and SIGTERM while the block runs (the final write and the checkpoint's removal: a
    netCDF file interrupted mid-close can hang), then say that one came; the output is complete."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    previous = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if got:
        click.echo("gradsweep: a stop signal came during the final write; held until the output was complete", err=True)


@contextlib.contextmanager
def user_errors():
    """Turn the errors a user can cause into one line and exit status 2."""
    try:
        yield
    except ConfigError as e:
        fail(str(e))
    except FileExistsError as e:
        fail(str(e.args[0]) if e.args else str(e))
    except OSError as e:
        if len(e.args) == 1:
            fail(str(e.args[0]))
        fail(e.strerror if e.filename is None else f"{e.strerror}: {e.filename}")  # a full disk names no file
    except KeyboardInterrupt as e:
        word, code = _stopped(e)
        fail(f"{word}; no output written", code)


@contextlib.contextmanager
def saving_on_interrupt(checkpoint):
    """Say, on Ctrl-C, what the checkpoint kept and how to go on (exit status 130)."""
    try:
        yield
    except KeyboardInterrupt as e:
        word, code = _stopped(e)
        if checkpoint.path.exists():
            fail(f"{word}; progress up to the last checkpoint is in {checkpoint.path.name}: rerun with --resume", code)
        fail(f"{word} before the first checkpoint; nothing saved", code)


def _open(path):
    import xarray as xr

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"cannot read {str(p)!r}: it is a directory")
    if not p.is_file():
        raise ConfigError(f"cannot read {str(p)!r}: no such file")
    try:
        with xr.open_dataset(p, engine="netcdf4") as opened:  # loaded and closed: no handle outlives the command
            ds = opened.load()
    except Exception as e:  # netCDF4 raises several types for unreadable files
        raise ConfigError(f"cannot read {str(p)!r} as a gradsweep netCDF file: {e}") from None
    from .dataset import verify

    try:
        return verify(ds)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradsweep")
@click.pass_context
def main(ctx):
    """Measure the variance of Monte Carlo gradient estimators at scale."""
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops a command as Ctrl-C does
        previous = signal.signal(signal.SIGTERM, _terminate)
        ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


_threads = click.option("--threads", type=int, default=None, help="numba threads (default: all cores); results do not depend on it.")
_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
_progress = click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="netCDF file to write (required unless --dry-run).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint (OUTPUT.checkpoint.npz).")
@click.option("--dry-run", is_flag=True, help="Print the work and an estimated run time; run nothing, write nothing.")
@click.option("--shard", default=None, metavar="I/N", help="Compute only shard I of N (0-based); combine with `gradsweep merge`.")
@click.option(
    "--backend",
    type=click.Choice(["cpu", "cuda", "auto", "dask"]),
    default="cpu",
    show_default=True,
    help="Where the kernels run: CPU cores, the GPU, the GPU if usable else the CPU, or a dask cluster.",
)
@click.option("--scheduler", default=None, metavar="ADDRESS", help="dask scheduler (tcp://HOST:PORT); default: a LocalCluster.")
@click.option(
    "--worker-backend",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="With --backend dask: the kernels each worker runs (cuda: one GPU per worker).",
)
@_threads
@_overwrite
@_progress
def run(config, output, shard, resume, dry_run, backend, scheduler, worker_backend, threads, overwrite, progress):
    """Run the sweep described by CONFIG (TOML) and write it to OUTPUT."""
    from . import dataset
    from .backends import kernels_for, resolve_backend
    from .sweep import estimate, sweep

    with user_errors():
        cfg = Config.from_toml(config)
        if scheduler and backend != "dask":
            raise ConfigError("--scheduler needs --backend dask")
        if worker_backend != "cpu" and backend != "dask":
            raise ConfigError("--worker-backend needs --backend dask")
        backend = resolve_backend(backend)
        kernels = kernels_for(backend, worker_backend)
        if backend == "dask":
            from .distributed import _import_distributed

            _import_distributed()
        if dry_run:
            click.echo(describe(cfg, estimate(cfg, threads=threads, kernels=kernels)))
            return
        if output is None:
            raise ConfigError("missing -o/--output (the netCDF file to write)")
        if output.exists() and config.exists() and output.samefile(config):
            raise ConfigError(f"-o {output} is the config file itself")
        check_writable(output, overwrite)
        from .checkpoint import Checkpoint
        from .config import parse_shard

        with writing(output, "gradsweep run"):
            checkpoint = Checkpoint(output, cfg, resume=resume, shard=parse_shard(shard), kernels=kernels)
            checkpoint.check()
            with saving_on_interrupt(checkpoint):
                ds = sweep(
                    cfg,
                    threads=threads,
                    progress=progress,
                    backend=backend,
                    shard=shard,
                    checkpoint=checkpoint,
                    scheduler=scheduler,
                    worker_backend=worker_backend,
                )
            with held_signals():
                dataset.write(ds, output, overwrite=overwrite)
                checkpoint.remove()
        note_overflow(ds)
    click.echo(f"wrote {output} ({cfg.total_samples:,} samples, {cfg.n_cells} cells)", err=True)


def note_overflow(ds) -> None:
    """One line on stderr where float64 could not represent some of a result's values."""
    from .dataset import overflowed

    count, first = overflowed(ds)
    if count:
        click.echo(f"gradsweep: note: {count} value(s) overflow float64 and are NaN or inf (the first: {first})", err=True)


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.3g} {unit}"
        n /= 1024


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def describe(cfg: Config, est: dict) -> str:
    grid = " x ".join(f"{cfg.axes[name].size} {name}" for name in cfg.dims)
    shared = " (common random numbers: one stream per N)" if cfg.common_random_numbers else ""
    return "\n".join(
        [
            f"objective: {cfg.objective.formula}; estimators: {', '.join(cfg.estimators)}; wrt: {', '.join(cfg.wrt)}",
            f"cells: {est['cells']:,} ({grid}); replicates: {cfg.reps:,}; seed: {cfg.seed}",
            f"samples: {est['samples']:,} (normals drawn: {est['draws']:,}{shared})",
            f"work units: {est['units']:,} in {est['batches']:,} batches; memory: at least {_size(est['memory'])}",
            f"kernels ready in {_duration(est['kernels_ready_s'])}; calibration: {est['rate']:.3g} samples/s on "
            + ("the GPU" if est["kernels"] == "cuda" else f"{est['threads']} threads"),
            f"estimated run time: {_duration(est['estimate_s'])}",
            "dry run: nothing was run and nothing written",
        ]
    )


@main.command()
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True, help="Folder for demo.nc and demo.png.")
@_threads
@_overwrite
@_progress
def demo(out_dir, threads, overwrite, progress):
    """The classic experiment: score vs pathwise for f(x) = x^2 at theta=2, sigma=1."""
    from . import dataset, report
    from .sweep import sweep

    nc, png = out_dir / "demo.nc", out_dir / "demo.png"
    with user_errors():
        out_dir.mkdir(parents=True, exist_ok=True)
        for p in (nc, png):
            check_writable(p, overwrite)
        with writing(nc, "gradsweep demo"), writing(png, "gradsweep demo"):
            ds = sweep(Config.from_dict(DEMO), threads=threads, progress=progress)
            dataset.write(ds, nc, overwrite=overwrite)
            with replacing(png) as tmp:
                report.plot(ds, tmp)
    click.echo(report.summary(ds))
    ratio = (ds["exact_var"].sel(estimator="score") / ds["exact_var"].sel(estimator="pathwise")).isel(N=0)
    click.echo(
        "\nexact variance ratio score/pathwise: " + ", ".join(f"d/d{w}: {float(ratio.sel(wrt=w).squeeze()):.4g}x" for w in ds.wrt.values)
    )
    click.echo(f"wrote {nc} and {png}", err=True)


@main.command()
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--reps", required=True, type=int, help="Replicates to add (fresh stream positions).")
@click.option(
    "--backend",
    type=click.Choice(["cpu", "cuda", "auto"]),
    default="cpu",
    show_default=True,
    help="Where the new replicates run; the file then records every backend that computed it.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted extend from its checkpoint (RESULT.checkpoint.npz).")
@_threads
@_progress
def extend(result, reps, backend, resume, threads, progress):
    """Merge REPS more replicates into RESULT, in place (atomically)."""
    from . import dataset
    from .backends import resolve_backend
    from .checkpoint import Checkpoint
    from .dataset import config_of
    from .extend import extend as extend_dataset

    with user_errors(), writing(result, "gradsweep extend"):  # read under the lock: no one changes it meanwhile
        ds = _open(result)
        ds.close()
        config = config_of(ds)
        kernels = resolve_backend(backend)
        # keyed by the file's replicates too: a file extended meanwhile does not take this checkpoint
        checkpoint = Checkpoint(result, config, resume=resume, rep_start=config.reps, reps=reps, kernels=kernels)
        checkpoint.check()
        with saving_on_interrupt(checkpoint):
            out = extend_dataset(ds, reps, threads=threads, progress=progress, backend=kernels, checkpoint=checkpoint)
        with held_signals():
            dataset.write(out, result, overwrite=True)
            checkpoint.remove()
        note_overflow(out)
    click.echo(f"{result}: now {int(out.attrs['replicates'])} replicates", err=True)


@main.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.argument("shards", nargs=-1, required=True, type=click.Path(path_type=Path))
@_overwrite
def merge(output, shards, overwrite):
    """Combine the shard files SHARDS of one sweep into OUTPUT (identical to a single run)."""
    from . import dataset
    from .shards import merge_shards

    with user_errors():
        check_writable(output, overwrite)
        with writing(output, "gradsweep merge"):
            parts = [_open(p) for p in shards]
            dataset.write(merge_shards(parts), output, overwrite=overwrite)
    click.echo(f"wrote {output} from {len(shards)} shards", err=True)


class Values(click.ParamType):
    """A comma-separated list of values (numbers with ``float``), for selecting by coordinate."""

    name = "values"

    def __init__(self, kind=str):
        self.kind = kind

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            converted = [self.kind(p) for p in parts]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)
        if not converted:
            self.fail("give at least one value", param, ctx)
        return converted


def _selection(ds, **at):
    """``ds`` at the given coordinate values, exactly (:func:`gradsweep.analysis.select`)."""
    from .analysis import select

    for name, values in at.items():
        if values is not None and name not in ds.dims:
            raise ConfigError(f"--{name}: this file has no {name} axis")
        bad = [v for v in values or () if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ConfigError(f"--{name}: give finite values, got {bad[0]}")
    return select(ds, **{name: v for name, v in at.items() if v is not None})


_select_options = [
    click.option("--N", "n", type=Values(float), default=None, help="N values to show (comma-separated; exact)."),
    click.option("--dim", type=Values(float), default=None, help="dim values to show (exact)."),
    click.option("--k", type=Values(float), default=None, help="k values to show (exact)."),
    click.option("--theta", type=Values(float), default=None, help="theta values to show (exact)."),
    click.option("--sigma", type=Values(float), default=None, help="sigma values to show (exact)."),
]


def _selecting(command):
    for option in reversed(_select_options):
        command = option(command)
    return command


def _json_records(df) -> str:
    """``df`` as a JSON list of row objects: numbers in full precision, NaN as null (JSON has no NaN)."""
    import json

    rows = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    return json.dumps(rows, default=lambda v: v.item(), allow_nan=False)


@main.command()
@click.argument("result", type=click.Path(path_type=Path))
@_selecting
@click.option("--estimator", type=Values(), default=None, help="Estimators to show (comma-separated).")
@click.option("--wrt", type=Values(), default=None, help="theta, sigma or both.")
@click.option("--reference", default=None, metavar="ESTIMATOR", help="Add var / var[ESTIMATOR] with its interval.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--max-rows", type=int, default=200, show_default=True, help="Rows of a table (0: all).")
def show(result, n, dim, k, theta, sigma, estimator, wrt, reference, level, fmt, max_rows):
    """Print a result: estimates beside exact values and intervals, as a table, CSV or JSON."""
    import shutil

    from . import report

    with user_errors():
        ds = _open(result)
        ds = _selection(ds, N=n, dim=dim, k=k, theta=theta, sigma=sigma, estimator=estimator, wrt=wrt)
        if reference is not None and reference not in ds["estimator"].values:
            raise ConfigError(f"--reference {reference}: not among the estimators shown ({', '.join(map(str, ds.estimator.values))})")
        if fmt == "table":
            text = report.summary(ds, max_rows or None, reference=reference, level=level, width=shutil.get_terminal_size().columns)
        else:
            df = report.frame(ds, reference, level).reset_index()
            text = df.to_csv(index=False).rstrip("\n") if fmt == "csv" else _json_records(df)
    click.echo(text)


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--seeds", type=click.IntRange(1, None), default=400, show_default=True, help="Runs of the config, seeds 0 .. SEEDS-1.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@_progress
def calibrate(config, seeds, level, fmt, progress):
    """How often the intervals cover the exact values: the config run once per seed.

    Every variance interval and the ratio interval of every compared pair, per wrt, over
    SEEDS x cells independent trials, with the rate's binomial standard error at LEVEL.
    """
    import pandas as pd

    from .calibration import coverage

    with user_errors():
        cfg = Config.from_toml(config)
        if not cfg.objective.is_builtin:
            raise ConfigError("calibrate needs exact values: a built-in objective")
        found = coverage(cfg, range(seeds), level, progress=progress)
    df = pd.DataFrame(
        [
            {
                "interval": c.what,
                "wrt": c.wrt,
                "covered": c.covered,
                "trials": c.trials,
                "rate": c.rate,
                "se": math.sqrt(level * (1 - level) / c.trials),
                "correlation": c.correlation,
            }
            for c in found
        ]
    )
    if fmt == "csv":
        click.echo(df.to_csv(index=False).rstrip("\n"))
    elif fmt == "json":
        click.echo(_json_records(df))
    else:
        click.echo(f"nominal level {level:g}; se: the rate's binomial standard error if the level held\n")
        click.echo(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@main.command()
@click.argument("result", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Image file (PNG, PDF, SVG).")
@click.option("--x", "x", type=click.Choice(["N", "dim", "k"]), default="N", show_default=True, help="What goes along the x axis.")
@click.option("--ratio", default=None, metavar="A/B", help="Instead: a heatmap of var[A] / var[B] over (theta, sigma).")
@click.option("--cost", is_flag=True, help="Multiply each variance by its estimator's cost (work-normalised).")
@click.option("--N", "n", type=int, default=None, help="N to show when x is dim or k (exact; default the first).")
@click.option("--dim", type=int, default=None, help="dim to show when x is N or k (exact; default the first).")
@click.option("--k", type=float, default=None, help="k to show when x is N (exact; default the first).")
@click.option("--theta", type=float, default=None, help="theta to show (exact; default the first).")
@click.option("--sigma", type=float, default=None, help="sigma to show (exact; default the first).")
@click.option("--dpi", type=click.IntRange(10, 2400), default=120, show_default=True, help="Resolution of a PNG.")
@_overwrite
def plot(result, output, x, ratio, cost, n, dim, k, theta, sigma, dpi, overwrite):
    """Plot variance against N, dim or k (simulated with 95% intervals, and exact), or a variance ratio heatmap."""
    from . import report

    with user_errors():
        if output.suffix.lower() not in IMAGE_SUFFIXES:
            raise ConfigError(f"-o {output}: name the image file .png, .pdf or .svg (the suffix picks the format)")
        pair = None
        if ratio is not None:
            pair = tuple(p.strip() for p in ratio.split("/"))
            if len(pair) != 2 or not all(pair):
                raise ConfigError(f"--ratio must be two estimators as A/B (like score/pathwise), got {ratio!r}")
        ds = _open(result)
        check_writable(output, overwrite)
        free = ("theta", "sigma") if pair else (x,)
        given = {"N": n, "dim": dim, "k": k, "theta": theta, "sigma": sigma}
        held = {name: v for name, v in given.items() if v is not None and name not in free}
        missing = [name for name in held if name not in ds.dims]
        if missing:
            raise ConfigError(f"--{missing[0]}: this file has no {missing[0]} axis")
        with replacing(output, overwrite=overwrite) as tmp:
            report.plot(ds, tmp, x=x, dpi=dpi, ratio=pair, cost=cost, **held)
    click.echo(f"wrote {output}", err=True)


if __name__ == "__main__":
    main()
