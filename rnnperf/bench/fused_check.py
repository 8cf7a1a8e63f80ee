"""Did the fused kernels run as C? (parity's question under ``formulation=fused``)

PyTensor falls back to an op's NumPy ``perform`` without a word where it cannot make a C thunk,
and parity would then compare NumPy with NumPy. Under ``formulation=fused`` the worker reports
``c_kernels`` (:func:`fused_ran_in_c`: the compiled function's thunks, and the ops' ``perform``
counts); a row whose kernels did not run as C fails.
"""

from __future__ import annotations

from .. import cells


def fused_report(fns, performs_before: int, cell: str = "elman") -> dict:
    """The worker's word on the fused kernels: ``c_kernels`` (both ran as C) and what was seen,
    the threads of OpenMP's pool and the C++ flags PyTensor compiled them with."""
    import pytensor
    ok, detail = fused_ran_in_c(fns, performs_before, cell)
    return {"c_kernels": ok, "c_kernels_detail": detail, "omp_threads": omp_threads(),
            "cxxflags": str(pytensor.config.gcc__cxxflags)}


def omp_threads() -> int | None:
    """The threads OpenMP would start in this process (the fused kernels' pool), if loaded."""
    from threadpoolctl import threadpool_info
    sizes = [int(p.get("num_threads") or 0) for p in threadpool_info()
             if p.get("user_api") == "openmp"]
    return max(sizes) if sizes else None


def _fused_ops() -> list[type]:
    """Every fused kernel op class (each cell's module imported, so each class exists)."""
    from ..model import fused  # noqa: F401  (Elman's kernels)
    from ..model.fused_support import RowParallelOp
    try:
        from ..model import fused_cells  # noqa: F401  (GRU's and LSTM's)
    except ImportError:
        pass
    found, todo = [], [RowParallelOp]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def fused_perform_calls() -> int:
    """Runs of the fused kernels' NumPy ``perform`` so far in this process, every cell's."""
    return sum(op.__dict__.get("perform_calls", 0) for op in _fused_ops())


def kernel_thunks(fn) -> dict[str, list[bool]]:
    """For each fused kernel node of the compiled PyTensor function ``fn``, by op name: whether
    its thunk is a C thunk. A VM linker keeps its nodes and their thunks in order (``fn.vm.nodes``,
    ``fn.vm.thunks``); ``COp.make_c_thunk`` marks a C thunk with ``cthunk`` (the compiled
    function the VM calls), ``Op.make_py_thunk`` a Python one with ``perform``. A linker that keeps
    no per-node thunks (``py``'s PerformLinker, a whole-graph ``CLinker``) gives ``{}``, which
    :func:`fused_ran_in_c` counts as not run in C."""
    kernels = tuple(_fused_ops())
    vm = getattr(fn, "vm", None)
    nodes, thunks = getattr(vm, "nodes", None), getattr(vm, "thunks", None)
    found: dict[str, list[bool]] = {}
    for node, thunk in zip(nodes or [], thunks or []):
        if isinstance(node.op, kernels):
            found.setdefault(type(node.op).__name__, []).append(hasattr(thunk, "cthunk"))
    return found


def fused_ran_in_c(fns, performs_before: int, cell: str = "elman") -> tuple[bool, str]:
    """Whether both fused kernels of ``cell`` ran as C in the compiled functions ``fns``: each kernel
    appears, every kernel node holds a C thunk, and no ``perform`` ran since the count was
    ``performs_before``; and what was seen, in words. A silent fall-back to ``perform`` would
    otherwise compare NumPy with NumPy."""
    seen: dict[str, list[bool]] = {}
    for fn in fns:
        for name, flags in kernel_thunks(fn).items():
            seen.setdefault(name, []).extend(flags)
    performs = fused_perform_calls() - performs_before
    ok = (set(seen) == set(cells.get(cell).fused_ops or ())
          and all(all(v) for v in seen.values()) and performs == 0)
    thunks = ", ".join(f"{k} {sum(v)} of {len(v)} C" for k, v in sorted(seen.items()))
    return ok, f"{thunks or 'no kernel nodes'}; perform ran {performs} time(s)"
