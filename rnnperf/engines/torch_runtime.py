"""torch set-up shared by the ``torch`` peer and ``pytensor-pytorch``: threads, device, precision.

# matmul_precision
torch's defaults are not float32 everywhere: ``torch.backends.cudnn.allow_tf32`` is True, so
``nn.RNN`` on cuDNN (the ``torch`` peer on a GPU) multiplies TF32 operands unless told otherwise,
and parity at float32's 2e-4 would fail. So every run sets all three switches (torch 2.13's
legacy names; its ``fp32_precision`` attributes follow them), before the engine builds anything
(``torch.compile`` in pytensor-pytorch reads them when it compiles):

* ``float32``: ``torch.backends.cuda.matmul.allow_tf32 = False``,
  ``torch.backends.cudnn.allow_tf32 = False``, ``torch.set_float32_matmul_precision("highest")``;
* ``tf32``: both True, ``"high"``;
* ``bf16``: both True, ``"medium"``.

On CUDA "medium" is TF32 as well (torch's docs: "high" or "medium" mean TF32 for float32
products; torch has no bfloat16 path for them), so bf16 there runs as tf32. On the CPU "medium"
sends products to oneDNN with ``fpmath_mode=bf16`` (``torch.backends.mkldnn.matmul.fp32_precision
== "bf16"``), which oneDNN may, not must, honour: on the AVX-512-BF16 (no AMX) EPYC measured it
picked ``brg_matmul:avx512_core`` and rounded nothing (errors stayed float32's).
``set_float32_matmul_precision`` comes last because it also sets oneDNN's setting, which the
legacy switches leave alone. None of this touches float64 products.
"""

from __future__ import annotations

from ..errors import Unavailable

#: matmul_precision -> (cuBLAS may use TF32, cuDNN may use TF32, set_float32_matmul_precision)
TORCH_PRECISION = {"float32": (False, False, "highest"), "tf32": (True, True, "high"),
                   "bf16": (True, True, "medium")}


def apply_torch_precision(value: str) -> None:
    """Set torch's float32 product precision for ``matmul_precision=value`` (table above)."""
    import torch
    cublas, cudnn, level = TORCH_PRECISION[value]
    torch.backends.cuda.matmul.allow_tf32 = cublas
    torch.backends.cudnn.allow_tf32 = cudnn
    torch.set_float32_matmul_precision(level)   # last: it sets oneDNN's too (see above)


def configure_torch(config):
    """Set torch's matmul precision and threads; return the device ``device=`` names, or raise
    Unavailable if torch has none (never a silent CPU run)."""
    import torch
    apply_torch_precision(config.get("matmul_precision", "float32"))
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.wants_gpu:
        if not torch.cuda.is_available() or torch.cuda.device_count() <= config.device_index:
            raise Unavailable(f"device={config.device}: torch sees no such CUDA device; not "
                              "falling back to the CPU")
        return torch.device("cuda", config.device_index)
    return torch.device("cpu")
