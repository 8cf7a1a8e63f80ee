"""The function cache: pytensor-jax's compiled functions, exported once, loaded by later processes.

# Why
A second process compiling the RW train graph for ``pytensor-jax`` pays again for PyTensor's
graph build and gradient and its rewrites and JAX conversion, most of its compile time
(docs/performance.md, "Compile"); JAX's persistent compilation cache only saves the XLA step
after them. PyTensor functions cannot be
pickled (the hoisted pullback is a closure), but what PyTensor's JAX linker makes of one is a
single jitted function of plain arrays (``JITLinker.create_jitable_thunk``: ``fn.vm.jit_fn`` is
``jax.jit(jax_funcify(fgraph))``). Its arguments are the function's inputs followed by the shared
variables it reads (``fgraph.inputs``); its results are the function's outputs followed by the new
values of the shared variables it updates (``fgraph.update_mapping``). ``jax.export`` serialises
that function as StableHLO; a later process deserialises it and runs ``jax.jit(exported.call)``,
whose XLA compile JAX's persistent cache then skips as well. Such a process never imports PyTensor.

The process that stores an entry runs the deserialised function too, so every process runs the
same program (and they share one XLA cache entry); the engine passes the parameters in and takes
the updated ones back (:mod:`rnnperf.engines.cached_jax_engine`).

# The key
The SHA-256 of :func:`describe`'s JSON, which holds everything the exported program depends on:

* ``sources``: a hash of rnnperf's modules that build or run the graph (:data:`SOURCES`);
* ``versions``: pytensor, jax and jaxlib (from package metadata);
* ``flags``: the whole effective profile (floatX, formulation, cell, device, threads and every
  passthrough key; the switch ``function_cache`` itself left out) and JAX's ``x64`` mode;
* ``cell``: the cell's name and, for a user's, its file and that file's sha256;
* ``function``: forward, loss, gradients, parity or train;
* ``inputs``: the shape and dtype of each input (static: JAX compiles one graph per shape), and
  ``params``: those of the cell's parameters (five; six for a GRU);
* ``backend``: JAX's platform and device kind (``cpu``; ``gpu`` and the GPU's model).

An entry also stores its description, which a load compares with the one asked for.

# Entries
One file per key under :func:`cache_dir`: ``MAGIC``, the header's length (8 bytes, big-endian),
the header (JSON: the description, the parameters in call order, the updated parameters in
output order, the number of outputs and whether the function returns one value), then the
serialised ``Exported``. Written atomically (:mod:`rnnperf.atomic`). An entry that cannot be read,
parsed, deserialised or matched is reported on stderr in one line and compiled again (the new
entry replaces it): the cache can make a run faster, never make it fail.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

from .. import cells

MAGIC = b"RNNPERF-FUNCTION-1\n"
#: rnnperf's modules whose code decides the exported program (relative to the package)
SOURCES = ("model/spec.py", "model/graph.py", "model/hoisted.py", "model/recurrence.py",
           "model/hoisted_cells.py", "cells/__init__.py", "cells/contract.py",
           "cells/stacked.py", "cells/gated.py", "cells/elman.py", "cells/gru.py",
           "cells/lstm.py", "cells/user.py", "flags/keys.py",
           "flags/config.py", "flags/sources.py", "engines/registry.py", "engines/base.py",
           "engines/function_cache.py", "engines/graph_engine.py", "engines/jax_runtime.py",
           "engines/pytensor_runtime.py", "engines/pytensor_engine.py",
           "engines/pytensor_jax_engine.py", "engines/cached_jax_engine.py")


def unavailable_reason() -> str | None:
    """Why entries cannot be written or read here, or None: ``Exported.serialize`` needs
    flatbuffers, which jax does not require."""
    if importlib.util.find_spec("flatbuffers") is None:
        return "flatbuffers is not installed (pip install flatbuffers)"
    return None


def state(config) -> str:
    """``on``, ``off`` (the profile says so) or ``unavailable`` (this environment cannot)."""
    if config.get("function_cache", "True") == "False":
        return "off"
    return "unavailable" if unavailable_reason() else "on"


def cache_dir() -> Path:
    from ..host import user_cache_dir
    return Path(user_cache_dir("functions"))


@functools.lru_cache(maxsize=None)
def sources_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def describe(config, function: str, inputs, params: dict) -> dict:
    """What an exported program depends on (the module docstring lists it).

    ``inputs`` is a sequence of ``(shape, dtype)``; ``params`` maps a parameter's name to one.
    """
    import jax
    device = jax.config.jax_default_device or jax.devices()[0]
    flags = {k: v for k, v in config.values().items() if k != "function_cache"}
    return {
        "sources": sources_digest(),
        "versions": {name: importlib.metadata.version(name)
                     for name in ("pytensor", "jax", "jaxlib")},
        "flags": dict(sorted(flags.items())),
        # a user's cell by its file's sha256: an edited file never reuses a stale function
        "cell": cells.get(config.cell).record(),
        "x64": bool(jax.config.jax_enable_x64),
        "function": function,
        "inputs": [[list(shape), str(dtype)] for shape, dtype in inputs],
        "params": {k: [list(shape), str(dtype)] for k, (shape, dtype) in sorted(params.items())},
        "backend": [device.platform, device.device_kind],
    }


def entry_path(description: dict) -> Path:
    text = json.dumps(description, sort_keys=True)
    return cache_dir() / f"{hashlib.sha256(text.encode()).hexdigest()}.jaxfn"


@dataclasses.dataclass
class Entry:
    """A compiled function in the calling convention of PyTensor's JAX linker."""

    exported: object             # jax.export.Exported
    params: list[str]            # parameters appended to the inputs, in order
    updates: list[str]           # parameters whose new values follow the outputs, in order
    n_outputs: int               # the function's own outputs, before the updates
    single: bool                 # the PyTensor function returned one value, not a list
    stored: bool = False         # compiled and stored by this process (not loaded)

    def header(self, description: dict) -> dict:
        return {"key": description, "params": self.params, "updates": self.updates,
                "n_outputs": self.n_outputs, "single": self.single}


def from_pytensor(fn, n_inputs: int, avals) -> Entry:
    """Export the jitted function behind a compiled ``pytensor.function`` (mode JAX).

    ``avals`` are ``jax.ShapeDtypeStruct`` for every argument of the jitted function: the
    ``n_inputs`` inputs, then the shared variables in ``fgraph.inputs`` order.
    """
    from jax import export
    linker = fn.maker.linker
    if linker.scalar_shape_inputs:
        # PyTensor marks these static (jax.jit static_argnums); our graphs have static shapes
        raise RuntimeError(f"function cache: inputs {linker.scalar_shape_inputs} are static "
                           "shape arguments; this graph cannot be exported")
    fgraph = linker.fgraph
    shared = fgraph.inputs[n_inputs:]
    mapping = fgraph.update_mapping           # output index -> input index
    n_outputs = len(fgraph.outputs) - len(mapping)
    if sorted(mapping) != list(range(n_outputs, len(fgraph.outputs))):
        raise RuntimeError("function cache: updates are not the trailing outputs")
    return Entry(exported=export.export(fn.vm.jit_fn)(*avals),
                 params=[v.name for v in shared],
                 updates=[fgraph.inputs[mapping[i]].name
                          for i in range(n_outputs, len(fgraph.outputs))],
                 n_outputs=n_outputs, single=bool(fn.unpack_single))


def store(description: dict, entry: Entry) -> bytes:
    """Write the entry atomically; returns the serialised ``Exported`` (what a load reads)."""
    from ..atomic import write_bytes_atomic
    blob = bytes(entry.exported.serialize())
    header = json.dumps(entry.header(description), sort_keys=True).encode()
    path = entry_path(description)
    try:
        write_bytes_atomic(path, MAGIC + len(header).to_bytes(8, "big") + header + blob)
    except OSError as exc:     # a full disk or a read-only cache: this run goes on without it
        print(f"rnnperf: cannot write function cache entry {path} "
              f"({exc.strerror or exc})", file=sys.stderr)
    return blob


def load(description: dict, n_inputs: int) -> Entry | None:
    """The entry for ``description``; None when there is none or it is unusable (one line on
    stderr then: the caller compiles again and :func:`store` replaces it)."""
    path = entry_path(description)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unusable(path, exc.strerror or str(exc))
    try:
        entry = parse(data, description)
    except Exception as exc:   # truncated, foreign, or a deserialiser that refuses it
        return _unusable(path, f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
    if len(entry.exported.in_avals) != n_inputs + len(entry.params):
        return _unusable(path, "its arguments do not match the function's")
    return entry


def parse(data: bytes, description: dict) -> Entry:
    if not data.startswith(MAGIC):
        raise ValueError("not a function cache entry")
    start = len(MAGIC) + 8
    end = start + int.from_bytes(data[len(MAGIC):start], "big")
    header = json.loads(data[start:end])
    if header["key"] != description:
        raise ValueError("its key differs from the one asked for")
    return Entry(exported=deserialize(data[end:]), params=header["params"],
                 updates=header["updates"], n_outputs=header["n_outputs"],
                 single=header["single"])


def deserialize(blob: bytes):
    from jax import export
    return export.deserialize(bytearray(blob))


def _unusable(path: Path, why: str) -> None:
    print(f"rnnperf: function cache entry {path} is unusable ({why}); compiling again",
          file=sys.stderr)
    return None
