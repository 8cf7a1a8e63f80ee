"""A user's cell checked once, in a worker, before anything measures it.

Loading a cell file (:mod:`rnnperf.cells.user`) checks what needs no engine library. The rest
needs PyTensor, which the parent never imports, so one worker (job ``cell``) does it, per distinct
user cell in a command, before any measurement or parity worker starts:

* the step, batched and single, in float64 and float32: how many states it returns, their shapes
  and dtypes (a problem is one line, exit 2);
* for ``bench`` and ``tune``: the FLOPs of each shape and task, counted from the step's graph
  (:data:`rnnperf.bench.flops.GRAPH_FLOPS`), unless the cell declares its own count;
* for ``parity``: its reference (the seed graph in float64 on PyTensor's pure-Python linker,
  :mod:`rnnperf.model.reference`) at the parity case for each dtype, after checking that
  reference's gradients against central finite differences (:data:`FD_TOLERANCE`).

Built-in cells skip all of it: their step, FLOPs and oracle are known.
"""

from __future__ import annotations

import dataclasses

from .. import cells
from ..errors import CheckFailed, ConfigError, Unavailable

#: the finite-difference check's bound on the reference's gradients (relative to their scale)
FD_TOLERANCE = 1e-6


@dataclasses.dataclass
class CellReport:
    cell: str
    fd_error: float | None = None

    @property
    def fd_ok(self) -> bool:
        return self.fd_error is not None and self.fd_error <= FD_TOLERANCE

    def line(self) -> str:
        verdict = "ok" if self.fd_ok else "FAILED"
        return (f"cell={self.cell}: float64 reference gradients vs central finite differences: "
                f"max relative error {self.fd_error:.1e} (bound {FD_TOLERANCE:.0e}) {verdict}")


def user_cells(configs) -> list[str]:
    """The distinct cells of ``configs`` that are a user's (not built-in), in order."""
    return list(dict.fromkeys(c.cell for c in configs if not cells.get(c.cell).builtin))


def check_cells(configs, *, jobs=(), reference: bool = False, parity_shape: dict | None = None,
                timeout: float = 600.0) -> dict[str, CellReport]:
    """Check every user cell of ``configs`` in a worker; count the FLOPs of ``jobs``' shapes and
    tasks; with ``reference``, compute each cell's reference at ``parity_shape`` (default: the
    tiny parity case) for the configs' dtypes. Raises one :class:`ConfigError` line for a bad
    step."""
    from .. import flags
    from .parity import store_reference
    from .process import run_worker
    from .flops import GRAPH_FLOPS, step_flops
    reports = {}
    for spec in user_cells(configs):
        cell = cells.get(spec)
        wanted = sorted({(j.task, tuple(j.shape[k] for k in "TBIHO")) for j in jobs
                         if j.config.cell == spec}) if not cell.has("flops") else []
        payload = {"flops": [[task, list(shape)] for task, shape in wanted]}
        if reference:
            dtypes = sorted({c.floatX for c in configs if c.cell == spec})
            payload.update(parity={"shape": parity_shape, "dtypes": dtypes})
        config = flags.load(flags=[flags.format_flags({"engine": "pytensor-c",
                                                       "formulation": "seed",
                                                       "floatX": "float64", "cell": spec})],
                            use_env=False)
        result = run_worker("cell", config, payload, timeout=timeout)
        if result.status == "unavailable":
            raise Unavailable(result.error or f"cell={spec}: cannot be checked here")
        if result.status != "ok":
            raise ConfigError(result.error or f"cell={spec}: the check failed")
        data = result.data
        for task, shape, count in data.get("flops", []):
            GRAPH_FLOPS[(cell.sha256, task, tuple(shape))] = int(count)
        for job in jobs:                      # carried by the job to wherever it is measured
            if job.config.cell == spec:
                job.flops = step_flops(job.task, *(job.shape[k] for k in "TBIHO"), spec)
        for dtype, by_variant in data.get("reference", {}).items():
            for variant, values in by_variant.items():
                store_reference(variant, dtype, parity_shape, spec, values)
        reports[spec] = CellReport(spec, data.get("fd_error"))
    return reports


def fd_failures(reports: dict[str, CellReport]) -> None:
    """A reference whose gradients disagree with finite differences fails parity (exit 1)."""
    bad = [r for r in reports.values() if r.fd_error is not None and not r.fd_ok]
    if bad:
        raise CheckFailed(f"cell={bad[0].cell}: its float64 reference's gradients disagree with "
                          f"finite differences (max relative error {bad[0].fd_error:.1e} > "
                          f"{FD_TOLERANCE:.0e}), so nothing can be checked against it")


def worker_job(config, payload):
    """In the worker: the step's checks, the FLOPs asked for, the reference and its FD check."""
    from ..engines.pytensor_runtime import apply_pytensor_flags, pytensor_flags
    apply_pytensor_flags(pytensor_flags(config))
    from ..model import reference
    from .parity import LR, parity_data, parity_params, parity_shape
    cell = cells.get(config.cell)
    for dtype in ("float64", "float32"):
        reference.check_step(cell, dtype)
    out: dict = {"cell": cell.record()}
    out["flops"] = [[task, shape, reference.step_graph_flops(cell, task, *shape)]
                    for task, shape in payload.get("flops", [])]
    if "parity" in payload:
        shape = parity_shape(payload["parity"]["shape"])
        out["fd_error"] = reference.finite_difference_error(cell)
        out["reference"] = {}
        for dtype in payload["parity"]["dtypes"]:
            params = {k: v.astype("float64")
                      for k, v in parity_params(dtype, shape=shape, cell=cell).items()}
            out["reference"][dtype] = {}
            for variant in ("single", "batched"):
                x, y, lengths = parity_data(variant, dtype, shape=shape)
                values = reference.reference_case(cell, params, x, y, lengths, LR)
                out["reference"][dtype][variant] = {k: v.tolist() for k, v in values.items()}
    return out
