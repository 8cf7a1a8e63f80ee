"""Where an array lives, read from the array itself: every engine records it in its results.

Library-specific set-up has its own module: :mod:`.jax_runtime`, :mod:`.torch_runtime`,
:mod:`.pytensor_runtime`.
"""

from __future__ import annotations


def array_device(value) -> str:
    """The device an array lives on, read from the array: ``cpu``, ``cuda:0``, ..."""
    import numpy as np
    if isinstance(value, np.ndarray):
        return "cpu"
    if hasattr(value, "devices"):  # jax.Array
        devs = sorted(value.devices(), key=str)
        dev = devs[0]
        kind = "cuda" if dev.platform in ("gpu", "cuda") else dev.platform
        return f"{kind}:{dev.id}" if kind != "cpu" else "cpu"
    if hasattr(value, "device"):  # torch.Tensor
        dev = value.device
        return "cpu" if dev.type == "cpu" else f"{dev.type}:{dev.index or 0}"
    return type(value).__name__
