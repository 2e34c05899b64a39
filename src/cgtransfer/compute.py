"""Where and how the model computes: device choice and thread limits, set before hippynn is imported.

On the CPU, hippynn's numba kernels spawn their own thread pool; two Snakemake jobs side by side then
oversubscribe the cores (measured here: 13x slower training with two jobs on 2 cores), and with one thread the
numba kernels are slower than plain pytorch (34 vs 25 ms per CG MD step, 256 beads). So CPU jobs use the
pytorch kernels with the rule's thread count; on a GPU hippynn picks its fastest kernels ("auto").
They run uncompiled (hippynn's ``_pytorch_raw``): its ``pytorch`` choice wraps the same functions in
``torch.compile``, which costs 1.6 s per process with a filled compile cache and 10 s with an empty one
(benchmarks/results/kernels.json), and its guards cost more per call than they save here: a default HIP-NN-TS
NVT run took 13.7 s uncompiled against 17.2 s compiled, same pressure to every printed digit. The two agree to
float32 rounding (tests/test_model.py).
An explicit HIPPYNN_USE_CUSTOM_KERNELS in the environment wins.

hippynn wraps its kernels in ``torch.compile`` when it is imported, whichever kernels are then used, and the first
``torch.compile`` of a process imports torch's compiler stack (dynamo, inductor): 1.6 of the 2.4 s that importing
hippynn takes here, paid by every HIP-NN-TS job. ``import_hippynn`` imports hippynn with those wrappers deferred to
their first call (``torch.compile`` itself compiles only at the first call, so a kernel that is used is compiled
as before; the uncompiled CPU kernels never load the compiler).

Where torch computes on the CPU it flushes subnormal floats to zero (``torch.set_flush_denormal``): the
network's Gaussian sensitivities exp(-(1/r - 1/mu)^2 sigma^2 / 2) underflow for most pairs of a liquid (below
1.2e-38 in float32), and the x86 microcode path for subnormal arithmetic is ~100x slower than for normal numbers.
Measured on a default-size 256-bead methanol network (one thread): a network call (energy and forces)
19.2 -> 13.8 ms, a training epoch 71 -> 52 ms per frame with the same validation loss
(benchmarks/results/network_call.json). The values flushed are below 1.2e-38 of sensitivities of order one.
"""

from __future__ import annotations

import functools
import os
import sys

CPU_KERNELS = "_pytorch_raw"  # hippynn's pytorch kernels without torch.compile


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


_THREADS: int | None = None


def configure(threads: int, device: str = "auto"):
    """Limit torch and numba to ``threads`` and choose hippynn's kernels for the device; returns the device.

    For ``device="cpu"`` torch is not imported here (an MS-CG job never needs it): the thread limit is applied
    when the HIP-NN-TS code imports torch (``configure_torch``)."""
    global _THREADS
    _THREADS = int(threads)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(_THREADS))
    if device == "cpu":
        os.environ.setdefault("HIPPYNN_USE_CUSTOM_KERNELS", CPU_KERNELS)
        quiet_kernel_choice()
        if "torch" in sys.modules:
            configure_torch()
        return "cpu"
    dev = resolve_device(device)
    configure_torch()
    os.environ.setdefault("HIPPYNN_USE_CUSTOM_KERNELS", CPU_KERNELS if dev.type == "cpu" else "auto")
    quiet_kernel_choice()
    return dev


def quiet_kernel_choice():
    """hippynn warns for every kernel name outside its public list; ``_pytorch_raw`` is chosen on purpose."""
    import warnings

    warnings.filterwarnings("ignore", message="Using non-standard custom kernel implementation")


def configure_torch():
    """Apply the thread count of ``configure`` to torch and flush subnormal floats to zero on the CPU (called
    where torch is imported for the model; the flag is per thread: OpenMM calls the model's force in the thread
    that steps the simulation, the one that imports the model)."""
    import torch

    if _THREADS is not None:
        torch.set_num_threads(_THREADS)
    torch.set_flush_denormal(True)


def import_hippynn():
    """Import hippynn (once per process) with the ``torch.compile`` calls it makes at import deferred to the
    compiled function's first call; returns the module. Call before the first ``import hippynn...``."""
    if "hippynn" in sys.modules:
        return sys.modules["hippynn"]
    import torch

    compile_now = torch.compile

    def compile_at_first_call(model=None, **options):
        if model is None:  # used as ``@torch.compile(...)``
            return lambda fn: compile_at_first_call(fn, **options)
        compiled = []

        @functools.wraps(model)
        def call(*args, **kwargs):
            if not compiled:
                compiled.append(compile_now(model, **options))
            return compiled[0](*args, **kwargs)

        return call

    torch.compile = compile_at_first_call
    try:
        import hippynn
    finally:
        torch.compile = compile_now
    return hippynn
