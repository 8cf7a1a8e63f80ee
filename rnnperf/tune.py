"""``rnnperf tune``: measure a space of profiles, reject what fails parity, write the fastest as rc.

The space is a product of flag values (and shape keys such as the batch size ``B``). By default it
is every available engine x ``floatX`` (float32, float64) x ``threads`` (1 and all cores) x
``formulation`` (seed, hoisted, and fused on pytensor-c; only for Theano-family engines, the others
have one formulation).
A TOML file (``--space``) replaces or adds keys in a ``[space]`` table, each a list of values::

    [space]
    engine = ["numpy", "pytensor-c"]
    floatX = ["float32"]
    "blas.ldflags" = ["", "-lopenblas"]
    B = [8, 32]

Every point runs in fresh processes (:mod:`rnnperf.dask_runner`): the ``parity`` worker job
against the float64 oracle, then the harness's ``bench`` job. A point that fails parity is shown
as rejected and never chosen, however fast. The sweep is an ``rnnperf.results/2`` document
(``--results``, default ``<out>.sweep.json``) saved after every point, resumable with
``--resume``; each measurement's parity outcome is in ``extra["parity"]``. The winner is written
with :func:`rnnperf.flags.write_rc` under a comment header of the figures it was chosen on, and
reads back through ``rnnperf flags --rc`` into the same profile. A plot goes next to it (``.png``).

Exit codes: 0 a winner was written; 1 no point passed parity (or none measured); 2 bad usage (an
unknown key or value in the space file, unparsable TOML, an empty space); 3 Dask missing, or a
scheduler that cannot be reached or has no ``bench`` worker.

Test-only: ``RNNPERF_TUNE_PERTURB=SUBSTRING`` perturbs the parity answer (``RNNPERF_PARITY_PERTURB``)
of every point whose key contains SUBSTRING, so a test can make one point fail parity.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

from . import flags
from . import results as res
from .errors import CheckFailed, ConfigError

PERTURB_VAR = "RNNPERF_TUNE_PERTURB"
CONNECT_TIMEOUT = 5.0


def register(sub) -> None:
    from . import harness
    from .cli import add_profile_args
    p = sub.add_parser("tune", help="sweep profiles, reject parity failures, write the fastest "
                                    "as an rc file",
                       description="Measure every point of a flag space (each in its own worker, "
                                   "each checked for parity) and write the fastest as an rc.")
    p.add_argument("--shape", required=True, metavar="T=..,B=..,I=..,H=..[,O=..]")
    p.add_argument("--task", choices=("train", "forward"), default="train")
    p.add_argument("--space", metavar="FILE.toml", help="a [space] table of key = [values]")
    p.add_argument("--engines", metavar="A,B,...", help="restrict the engine key to these")
    add_profile_args(p)
    p.add_argument("--out", required=True, metavar="BEST.theanorc", help="the winner's rc file")
    p.add_argument("--results", metavar="SWEEP.json",
                   help="the sweep's results document (default <out>.sweep.json)")
    harness.add_sweep_args(p, what="worker")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dask", choices=("local",), help="a local Dask cluster of 2 workers")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing Dask cluster")
    p.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="S",
                   help="seconds to reach --scheduler and see a worker (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_tune)


# --- the space -----------------------------------------------------------------------------------

def default_space() -> dict[str, list[str]]:
    from . import engines
    cores = os.cpu_count() or 1
    return {"engine": [n for n in engines.names() if engines.availability(n)[0]],
            "floatX": ["float32", "float64"],
            "threads": list(dict.fromkeys(["1", str(cores)])),
            "formulation": list(flags.FORMULATIONS)}


def read_space(path) -> dict[str, list[str]]:
    """The ``[space]`` table of a TOML file, every key and value validated; errors name both."""
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read space file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: unparsable TOML: {exc}") from None
    stray = [k for k in data if k != "space"]
    if stray:
        raise ConfigError(f"{path}: unknown table or key {stray[0]!r} (expected only [space])")
    table = data.get("space")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [space] table")
    if not table:
        raise ConfigError(f"{path}: [space] is empty: no point to measure")
    space: dict[str, list[str]] = {}
    for raw, values in table.items():
        where = f"{path}: [space] {raw}"
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"{where}: empty list: the space has no point")
        if raw.strip().upper() in res.SHAPE_KEYS:
            key = raw.strip().upper()
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                raise ConfigError(f"{where}: shape values must be positive integers")
            space[key] = [str(v) for v in values]
            continue
        key = flags.canonical_key(raw, where)
        checked = []
        for value in values:
            if isinstance(value, (dict, list)):
                raise ConfigError(f"{where}: bad value {value!r}: must be a string or number")
            text = str(value)
            if "," in text:
                raise ConfigError(f"{where}: bad value {text!r}: a value cannot hold a comma")
            checked.append(flags.check_value(key, text, where))
        space[key] = list(dict.fromkeys(checked))
    return space


def build_space(space_file, engines_arg) -> dict[str, list[str]]:
    from . import engines
    space = default_space()
    if space_file:
        space.update(read_space(space_file))
    if engines_arg:
        names = [n.strip() for n in engines_arg.split(",") if n.strip()]
        for name in names:
            if name != "pytensor":
                engines.get(name)                       # unknown: one line, exit 2
        space["engine"] = names
    if not space.get("engine"):
        raise ConfigError("the space has no engine (none is available here; see rnnperf "
                          "engines)")
    return space


def expand(space: dict, shape: dict, task: str, base_flags, rc) -> list:
    """Every point of the space as a harness Job, one per distinct profile x shape."""
    from . import engines
    from .harness import Job
    keys = list(space)
    jobs, seen = [], set()
    for combo in itertools.product(*(space[k] for k in keys)):
        point = dict(zip(keys, combo))
        engine = point.get("engine")
        family = engine == "pytensor" or (engine in engines.REGISTRY and
                                          engines.get(engine).has_formulations)
        if not family:
            point.pop("formulation", None)            # one formulation outside the family
        elif point.get("formulation", "seed") not in flags.formulations_for(engine):
            continue                                  # fused: pytensor-c's alone
        text = ",".join(f"{k}={v}" for k, v in point.items() if k not in res.SHAPE_KEYS)
        try:
            config = flags.load(flags=list(base_flags or []) + [text], rc=rc)
        except ConfigError as exc:
            raise ConfigError(f"space point {text}: {exc}") from None
        job = Job(config, {**shape, **{k: int(v) for k, v in point.items()
                                       if k in res.SHAPE_KEYS}}, task)
        if job.key not in seen:
            seen.add(job.key)
            jobs.append(job)
    return jobs


# --- ranking and reporting -----------------------------------------------------------------------

def verdict(m: res.Measurement) -> str:
    """``ok`` (eligible), the bench status, or why parity rejected it."""
    if m.status != "ok":
        return m.status
    parity = (m.extra or {}).get("parity") or {}
    if parity.get("status") != "ok":
        return f"rejected: parity {parity.get('status') or 'not run'}"
    return "ok"


def rank(measurements) -> list[res.Measurement]:
    """Eligible points fastest first, then the rest (fastest first) below them."""
    def speed(m):
        return -(m.seq_per_s or 0.0)
    good = sorted((m for m in measurements if verdict(m) == "ok" and m.seq_per_s), key=speed)
    rest = sorted((m for m in measurements if m not in good), key=speed)
    return good + rest


def parity_error(m: res.Measurement) -> str:
    p = (m.extra or {}).get("parity") or {}
    if "max_rel" not in p:
        return "-"
    value = p["max_rel"]
    return f"{value:.1e}" if isinstance(value, float) else str(value)


def render(ranked, best, console=None) -> None:
    from rich.table import Table

    from .ui import stdout_console
    console = console or stdout_console()
    shapes = len({res.shape_label(m.shape) for m in ranked}) > 1
    table = Table(title=f"rnnperf tune: {ranked[0].task if ranked else ''}, ranked by "
                        "sequences/s; parity = worst error relative to the oracle's scale")
    cols = ["#", "profile"] + (["shape"] if shapes else []) + [
        "seq/s", "vs best", "parity err", "compile s", "host", "status"]
    for col in cols:
        table.add_column(col, justify="right" if col in ("#", "seq/s", "vs best", "parity err",
                                                         "compile s") else "left")
    for i, m in enumerate(ranked, 1):
        v = verdict(m)
        ratio = f"{m.seq_per_s / best.seq_per_s:.2f}x" if best and m.seq_per_s else "-"
        row = [str(i) if v == "ok" else "-", m.profile] + (
            [res.shape_label(m.shape)] if shapes else []) + [
            f"{m.seq_per_s:.1f}" if m.seq_per_s else "-", ratio, parity_error(m),
            f"{m.compile_s:.2f}" if m.compile_s is not None else "-", m.host or "-", v]
        table.add_row(*row, style="bold green" if m is best else (None if v == "ok" else "red"))
    console.print(table)
    for m in ranked:
        if m.error:
            console.print(f"{m.profile}: {m.status}: {m.error}", markup=False, highlight=False)


def rc_text(best, runner_up, doc: res.ResultsDoc, n_points: int, n_rejected: int) -> str:
    """The winner's explicit keys as an rc file, headed by the figures it was chosen on."""
    values = {k: s.value for k, s in flags.parse_flags(best.profile, "profile")}
    machine = doc.machine or {}
    parity = best.extra.get("parity", {})
    lead = (f"{best.seq_per_s / runner_up.seq_per_s:.2f}x the runner-up ({runner_up.profile}, "
            f"{runner_up.seq_per_s:.1f} seq/s)" if runner_up else "no runner-up passed parity")
    header = "\n".join([
        f"Chosen by rnnperf tune on {res.now()}",
        f"machine: {best.host or machine.get('hostname', '?')}, {machine.get('cpu', '?')}, "
        f"{machine.get('cores_logical', '?')} logical cores",
        f"shape {res.shape_label(best.shape)}, task {best.task}; {n_points} points measured, "
        f"{n_rejected} rejected",
        f"throughput {best.seq_per_s:.1f} seq/s (median {best.median_s * 1e3:.3f} ms per step, "
        f"threads {best.threads}), {lead}",
        f"parity vs the float64 NumPy oracle: worst relative error {parity_error(best)} "
        f"({parity.get('quantity', '?')}, tolerance {parity.get('tolerance', '?')})",
        f"compile + first call {best.compile_s:.2f} s" if best.compile_s is not None else
        "compile time not measured",
    ])
    return flags.write_rc(values, header)


def plot_ranked(ranked, best, out, title: str) -> str:
    """Horizontal bars of sequences/s per point; rejected points hatched red, never hidden."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(reversed(ranked))                        # fastest at the top
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.35 * len(rows)), constrained_layout=True)
    for y, m in enumerate(rows):
        v = verdict(m)
        color = "tab:green" if m is best else ("tab:blue" if v == "ok" else "tab:red")
        ax.barh(y, m.seq_per_s or 0, color=color, hatch=None if v == "ok" else "//",
                alpha=1.0 if v == "ok" else 0.5)
        note = (f"{m.seq_per_s / best.seq_per_s:.2f}x" if best and m.seq_per_s else "") + \
            ("" if v == "ok" else f"  {v}")
        ax.text(m.seq_per_s or 0, y, f" {note}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{m.profile} {res.shape_label(m.shape)}"
                                     if len({res.shape_label(r.shape) for r in rows}) > 1
                                     else m.profile for m in rows], fontsize=7)
    speeds = [m.seq_per_s for m in rows if m.seq_per_s]
    if speeds and max(speeds) / min(speeds) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("sequences/s (green: chosen, red hatched: rejected or failed)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)


# --- the command ---------------------------------------------------------------------------------

def cmd_tune(args: argparse.Namespace) -> int:
    from . import dask_runner, harness
    shape = harness.parse_shape(args.shape)
    space = build_space(args.space, args.engines)
    jobs = expand(space, shape, args.task, args.flags, args.rc)
    settings = harness.Settings(min_time=args.min_time, rounds=args.rounds, timeout=args.timeout)
    settings.check()
    out = Path(args.out)
    sweep = Path(args.results) if args.results else out.with_suffix(".sweep.json")
    client = cluster = None
    if args.dask or args.scheduler:                  # unreachable: exit 3 before any file
        client, cluster = dask_runner.connect(args.scheduler or "local", args.connect_timeout)
    try:
        doc = _sweep(args, jobs, settings, sweep, client)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    keys = {j.key for j in jobs}
    ranked = rank([m for m in doc.results if m.key in keys])
    eligible = [m for m in ranked if verdict(m) == "ok" and m.seq_per_s]
    best = eligible[0] if eligible else None
    render(ranked, best)
    png = out.with_suffix(".png")
    plot_ranked(ranked, best, png, f"rnnperf tune: {res.shape_label(shape)} {args.task}, "
                f"{doc.machine.get('cpu', '?')}")
    print(f"sweep: {sweep}\nplot: {png}")
    if best is None:
        raise CheckFailed(f"no point of {len(jobs)} passed parity and measured ok; "
                          f"no rc written (see {sweep})")
    rejected = sum(1 for m in ranked if verdict(m) != "ok")
    from .atomic import write_text_atomic
    write_text_atomic(out, rc_text(best, eligible[1] if len(eligible) > 1 else None, doc,
                                   len(ranked), rejected))
    print(f"winner: {best.profile} ({best.seq_per_s:.1f} seq/s) -> {out}")
    return 0


def _sweep(args, jobs, settings, sweep, client) -> res.ResultsDoc:
    """Measure what the document lacks, here or on Dask, saving after every point."""
    from . import dask_runner, harness
    from .ui import sweep_progress
    doc = harness.open_document(sweep, args.resume, args.force)
    doc.settings = settings.to_json()
    done = {m.key for m in doc.results
            if m.status in harness.KEEP_ON_RESUME and "parity" in (m.extra or {})}
    todo = _skip_unavailable([j for j in jobs if j.key not in done], doc)
    res.save(doc, sweep)
    envs = _perturb_envs(todo)
    bar = sweep_progress(not args.no_progress)
    with bar:
        task = bar.add_task("tune", total=len(jobs), completed=len(jobs) - len(todo))

        def describe(text):
            bar.update(task, description=text[:60])

        def record(m):
            doc.put(m)
            res.save(doc, sweep)
            bar.advance(task)

        if client is not None:
            dask_runner.run_dask(todo, settings, record, envs, describe, client)
        else:
            dask_runner.run_local(todo, settings, record, envs, describe)
    return doc


def _skip_unavailable(jobs, doc) -> list:
    """Engines named but not installed are recorded as such without starting a worker."""
    from .engines import availability
    keep = []
    for job in jobs:
        ok, reason, _ = availability(job.config.engine)
        if ok:
            keep.append(job)
        else:
            doc.put(job.blank(status="unavailable",
                              error=f"engine {job.config.engine} is not available: {reason}"))
    return keep


def _perturb_envs(jobs) -> dict:
    """Test-only: ``RNNPERF_TUNE_PERTURB=SUBSTRING`` breaks parity for matching points."""
    match = os.environ.get(PERTURB_VAR, "")
    if not match:
        return {}
    return {j.key: {"RNNPERF_PARITY_PERTURB": "0.5"} for j in jobs if match in j.key}
