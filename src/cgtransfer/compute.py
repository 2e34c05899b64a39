"""Where and how the model computes: device choice and thread limits, set before hippynn is imported.

On the CPU, hippynn's numba kernels spawn their own thread pool; two Snakemake jobs side by side then
oversubscribe the cores (measured here: 13x slower training with two jobs on 2 cores), and with one thread the
numba kernels are slower than plain pytorch (34 vs 25 ms per CG MD step, 256 beads). So CPU jobs use the
pytorch kernels with the rule's thread count; on a GPU hippynn picks its fastest kernels ("auto").
An explicit HIPPYNN_USE_CUSTOM_KERNELS in the environment wins.
"""

from __future__ import annotations

import os


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def configure(threads: int, device: str = "auto"):
    """Limit torch and numba to ``threads`` and choose hippynn's kernels for the device; returns the device."""
    import torch

    torch.set_num_threads(int(threads))
    os.environ.setdefault("NUMBA_NUM_THREADS", str(int(threads)))
    dev = resolve_device(device)
    os.environ.setdefault("HIPPYNN_USE_CUSTOM_KERNELS", "pytorch" if dev.type == "cpu" else "auto")
    return dev
