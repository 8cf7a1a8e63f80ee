"""torch set-up shared by the ``torch`` peer and ``pytensor-pytorch``: threads and device."""

from __future__ import annotations

from ..errors import Unavailable


def configure_torch(config):
    """Pin torch's threads and return the device ``device=`` names; Unavailable if it has none."""
    import torch
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.wants_gpu:
        if not torch.cuda.is_available() or torch.cuda.device_count() <= config.device_index:
            raise Unavailable(f"device={config.device}: torch sees no such CUDA device; not "
                              "falling back to the CPU")
        return torch.device("cuda", config.device_index)
    return torch.device("cpu")
