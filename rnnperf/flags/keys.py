"""The keys of a profile: what each means, its default, and the check its value must pass.

Keys rnnperf owns (``engine``, ``device``, ``floatX``, ``mode``, ``formulation``, ``cell``,
``threads``, ``function_cache``, ``matmul_precision``) are checked here; the top-level Theano/PyTensor flags
a Theano user types by habit are listed so a misspelling is caught, and passed through to the
engine untouched. Engine names, modes and formulations come from the engine registry
(:mod:`rnnperf.engines.registry`), and so does which engines can honour a ``matmul_precision``
other than float32 (:func:`matmul_precision_refusal`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Callable

from .. import cells
from ..engines.registry import FORMULATIONS, engine_choices, mode_table, get as engine_spec

#: The default engine and formulation on CPU: the quickest to compile among the fast ones (the
#: measured trade-off is in docs/performance.md). The seed's literal graph stays one flag away.
DEFAULT_ENGINE = "pytensor-jax"
DEFAULT_FORMULATION = "hoisted"


def choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            near = difflib.get_close_matches(value, allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"must be one of {', '.join(allowed)}{hint}")
        return value
    return check


def _device(value: str) -> str:
    if value == "cpu" or re.fullmatch(r"cuda\d*", value):
        return value
    if value.startswith("gpu"):
        raise ValueError("the old `gpu` backend is gone since Theano 1.0: use cuda or cudaN")
    raise ValueError("must be cpu, cuda or cudaN")


def _mode(value: str) -> str:
    upper = value.upper()
    if upper not in mode_table():
        return choice(*mode_table())(value)
    return upper


def _threads(value: str) -> str:
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:  # not str.isdigit: it takes "²"
        raise ValueError("must be a positive integer")
    return str(int(value))


def _bool(value: str) -> str:
    low = value.lower()
    if low in ("true", "1", "yes", "on"):
        return "True"
    if low in ("false", "0", "no", "off"):
        return "False"
    raise ValueError("must be True or False")


def _cell(value: str) -> str:
    """A built-in cell's name, ``PATH.py:Name``, ``module:Name`` or an entry point's name; a
    user's cell is loaded and checked here (the file, the class, its required parts)."""
    from ..errors import ConfigError
    if value in cells.BUILTIN:
        return value
    try:
        cells.get(value)
    except ConfigError as exc:
        # the cell's own message says which file and what; the key's prefix would repeat it
        raise ValueError(str(exc).split(": ", 1)[1] if str(exc).startswith("cell=") else
                         str(exc)) from None
    return value


def _anything(value: str) -> str:
    return value


#: ``matmul_precision=``: how float32 matrix products may round their operands. The libraries'
#: own defaults differ by device (JAX's is TF32 on an A100/H100, and so is cuDNN's RNN in torch),
#: so rnnperf always sets one, and records it with every result.
MATMUL_PRECISIONS = ("float32", "tf32", "bf16")
#: the array libraries whose precision rnnperf sets (:mod:`rnnperf.engines.torch_runtime`,
#: :mod:`rnnperf.engines.jax_runtime`); an engine whose products run elsewhere can only honour
#: float32
PRECISION_LIBRARIES = ("torch", "jax")
MATMUL_PRECISION_DOC = (
    "float32 products' internal precision: float32 (full; torch: allow_tf32 False for cuBLAS and "
    "cuDNN, matmul precision 'highest'; JAX: 'float32'), tf32 (TF32 operands on Ampere+ GPUs; "
    "torch: allow_tf32 True, 'high'; JAX: 'tensorfloat32'), bf16 (the libraries' fastest: torch "
    "'medium', JAX 'bfloat16'; both TF32 on an A100/H100). Inert under floatX=float64; on a CPU "
    "no rounding changes (measured); torch and XLA engines only")


def matmul_precision_refusal(engine: str, value: str) -> str | None:
    """Why ``engine`` cannot honour ``matmul_precision=value``, in one line; None if it can.

    Only engines whose products go through torch or XLA have a precision to set; numpy,
    pytensor-c, pytensor-numba and theano would run full float32 and a result would record a
    precision that never applied. Kept here, beside the key, so the profile (which knows the
    engine, resolved: ``pytensor-c``, not ``pytensor``) can refuse the pair before anything
    runs."""
    if value == "float32" or engine_spec(engine).peak_library in PRECISION_LIBRARIES:
        return None
    return (f"matmul_precision={value} has no meaning for engine={engine}: its products go "
            "through neither torch nor XLA (only float32 is honoured)")


@dataclasses.dataclass(frozen=True)
class Key:
    default: str | None
    check: Callable[[str], str]
    doc: str
    owned: bool = True  # False: a PyTensor/Theano top-level flag that we only pass through


KEYS: dict[str, Key] = {
    "engine": Key(DEFAULT_ENGINE, choice(*engine_choices()), "which engine compiles the model"),
    "device": Key("cpu", _device, "cpu, cuda or cudaN; never falls back to the CPU"),
    "floatX": Key("float32", choice("float32", "float64"), "dtype of parameters and data"),
    "mode": Key(None, _mode, "PyTensor mode: CVM (C), NUMBA, JAX, PYTORCH; FAST_RUN means NUMBA"),
    "formulation": Key(DEFAULT_FORMULATION, choice(*FORMULATIONS),
                       "seed: the tutorial's literal graph; hoisted: input GEMM outside scan; "
                       "fused: hoisted with C kernels for its loops (pytensor-c)"),
    "cell": Key("elman", _cell, "the recurrent cell: elman (the tutorial's tanh RNN), gru or "
                "lstm (torch's equations and gate order), or your own: PATH.py:Class, "
                "package.module:Class, or a name registered under the rnnperf.cells entry "
                "points"),
    "threads": Key(None, _threads, "CPU threads for BLAS and the engine (default: all cores)"),
    "function_cache": Key("True", _bool, "pytensor-jax: load compiled functions exported by an "
                          "earlier process (~/.cache/rnnperf/functions) instead of compiling"),
    "matmul_precision": Key("float32", choice(*MATMUL_PRECISIONS), MATMUL_PRECISION_DOC),
    # Top-level Theano/PyTensor flags a Theano user types by habit; passed through untouched.
    "optimizer": Key(None, _anything, "PyTensor graph optimizer (fast_run, fast_compile, None)",
                     owned=False),
    "linker": Key(None, _anything, "PyTensor linker (cvm, c|py, vm, ...)", owned=False),
    "cxx": Key(None, _anything, "C++ compiler used by the C backend", owned=False),
    "allow_gc": Key(None, _bool, "free intermediate buffers between calls", owned=False),
    "openmp": Key(None, _bool, "let the C backend use OpenMP", owned=False),
    "base_compiledir": Key(None, _anything, "where compiled modules are cached", owned=False),
    "compiledir": Key(None, _anything, "exact compile cache directory", owned=False),
    "warn_float64": Key(None, _anything, "ignore, warn, raise or pdb on float64 graphs",
                        owned=False),
    "exception_verbosity": Key(None, _anything, "low or high", owned=False),
}
