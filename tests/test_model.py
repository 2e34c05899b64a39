"""The CG model's energy and forces: finite differences and the prior's design values."""

import json
import math

import numpy as np
import pytest
import torch

import cgtransfer  # noqa: F401
from cgtransfer.kinds import hipnn_graph as cgmodel

NETWORK = dict(n_features=8, n_sensitivities=6, dist_soft_min=2.5, dist_soft_max=5.0, dist_hard_max=6.0,
               n_interaction_layers=1, n_atom_layers=2, sensitivity_type="inverse", resnet=True)
PRIOR = dict(onset=3.0, strength=2.0, width=0.15, fraction=0.05)


def graph_module(n_types=2, prior=PRIOR, zero_network=False):
    from hippynn.graphs import GraphModule

    torch.manual_seed(0)
    nodes = cgmodel.build_graph(n_types, NETWORK, prior)
    if zero_network:
        for p in nodes["henergy"].torch_module.parameters():
            p.data.zero_()
    gm = GraphModule([nodes["species"], nodes["positions"], nodes["cells"]], [nodes["energy"], nodes["forces"]])
    return gm.double()


def evaluate(gm, species, pos, box):
    s = torch.as_tensor(species[None], dtype=torch.int64)
    x = torch.as_tensor(pos[None], dtype=torch.float64)
    c = torch.as_tensor(np.diag(box)[None], dtype=torch.float64)
    e, f = gm(s, x, c)
    return float(e.detach().reshape(-1)[0]), f.detach().numpy()[0]


def random_liquid(n, box, min_dist, seed=0):
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, box, 3)
        d = np.array(pos) - p if pos else np.zeros((0, 3))
        d -= box * np.round(d / box)
        if not pos or np.min(np.linalg.norm(d, axis=1)) > min_dist:
            pos.append(p)
    return np.array(pos)


def test_forces_are_minus_energy_gradient_with_prior_and_pbc():
    """Central finite differences of E (network + prior, periodic, two bead types) equal the model forces."""
    gm = graph_module()
    box = np.array([13.0, 13.5, 14.0])
    pos = random_liquid(14, box, 2.7)
    species = np.array([1, 2] * 7)
    e0, forces = evaluate(gm, species, pos, box)
    assert np.isfinite(e0) and np.abs(forces).max() > 1e-3
    h = 1e-5
    rng = np.random.default_rng(1)
    for i in rng.choice(len(pos), 5, replace=False):
        for k in range(3):
            plus, minus = pos.copy(), pos.copy()
            plus[i, k] += h
            minus[i, k] -= h
            fd = -(evaluate(gm, species, plus, box)[0] - evaluate(gm, species, minus, box)[0]) / (2 * h)
            assert forces[i, k] == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_prior_force_equals_design_values():
    """With the network zeroed, the force between two beads is the prior's: p·s at the onset, s at onset − d,
    each pair counted once although hippynn's pair list holds it twice."""
    gm = graph_module(n_types=1, zero_network=True)
    box = np.array([30.0, 30.0, 30.0])
    for r, expected in ((PRIOR["onset"], PRIOR["fraction"] * PRIOR["strength"]),
                        (PRIOR["onset"] - PRIOR["width"], PRIOR["strength"])):
        pos = np.array([[10.0, 10.0, 10.0], [10.0 + r, 10.0, 10.0]])
        e, f = evaluate(gm, np.array([1, 1]), pos, box)
        assert f[1, 0] == pytest.approx(expected, rel=1e-9)
        assert f[0, 0] == pytest.approx(-expected, rel=1e-9)
        a = math.log(1 / PRIOR["fraction"]) / PRIOR["width"]
        assert e == pytest.approx(expected / a, rel=1e-9)  # E = |F|/a for an exponential


def test_prior_validates_its_parameters():
    with pytest.raises(ValueError):
        cgmodel.ExponentialRepulsion(3.0, 1.0, 0.15, 1.5)


def test_uncompiled_cpu_kernels_give_the_compiled_ones_to_float32_rounding():
    """hippynn's ``pytorch`` kernels (torch.compile) and the same functions uncompiled (``_pytorch_raw``, what the
    workflow runs on the CPU: no compile per process) give energies, forces and training gradients equal to float32
    rounding (a few units in the last place: the compiled code sums in another order, which depends on the CPU's
    vector width: on AVX-512 machines the energies differ in the last place too), so the tests check the physics
    of the kernels the workflow runs."""
    import hippynn.custom_kernels as ck

    box = np.array([14.0, 14.0, 14.0])
    pos = random_liquid(60, box, 2.8, seed=3)
    species = np.array([1, 2] * 30)
    out = {}
    before = ck.CUSTOM_KERNELS_ACTIVE
    try:
        for kernels in ("_pytorch_raw", "pytorch"):
            ck.set_custom_kernels(kernels)
            gm = graph_module().float()
            s = torch.as_tensor(species[None], dtype=torch.int64)
            x = torch.as_tensor(pos[None], dtype=torch.float32)
            c = torch.as_tensor(np.diag(box)[None], dtype=torch.float32)
            e, f = gm(s, x, c)
            (e.sum() + (f ** 2).sum()).backward()  # a force-matching loss's gradient reaches the parameters
            grads = [p.grad.detach().clone() for p in gm.parameters() if p.grad is not None]
            out[kernels] = (e.detach(), f.detach(), grads)
    finally:
        ck.set_custom_kernels(before)
    (e0, f0, g0), (e1, f1, g1) = out["_pytorch_raw"], out["pytorch"]
    eps = float(torch.finfo(torch.float32).eps)
    print("max |dF| / max |F|", float((f0 - f1).abs().max() / f0.abs().max()),
          "grads:", [float((a - b).abs().max() / a.abs().max()) for a, b in zip(g0, g1) if a.abs().max() > 0])
    assert float((e0 - e1).abs().max()) <= 4 * eps * float(e0.abs().max()) and float(f0.abs().max()) > 1.0
    assert float((f0 - f1).abs().max()) <= 16 * eps * float(f0.abs().max())
    assert len(g0) == len(g1) > 0
    for a, b in zip(g0, g1):
        assert float((a - b).abs().max()) <= 64 * eps * float(a.abs().max())


def test_hippynn_loads_without_torch_compiler_and_compiles_its_kernels_at_their_first_call():
    """A job that imports the model code does not pay for torch's compiler stack (``compute.import_hippynn``
    defers the ``torch.compile`` wrappers hippynn makes at import), and hippynn's compiled kernels still compile
    when called: the compiler is loaded then, and the compiled environment sum equals the uncompiled one (a sum of
    products over pairs, checked here on random pairs against the same sum written out in numpy)."""
    import subprocess
    import sys

    code = """
import json, sys
import numpy as np
from cgtransfer.compute import configure
configure(1, "cpu")
import cgtransfer.kinds.hipnn_force  # what a HIP-NN-TS CG MD job imports
loaded_at_import = "torch._dynamo" in sys.modules
import torch
from hippynn.custom_kernels.env_pytorch import pytorch_kernels_compile
rng = np.random.default_rng(0)
sens, feat = rng.random((40, 6), dtype=np.float32), rng.random((10, 4), dtype=np.float32)
first, second = rng.integers(0, 10, 40), rng.integers(0, 10, 40)
env = pytorch_kernels_compile.envsum_impl(torch.as_tensor(sens), torch.as_tensor(feat), torch.as_tensor(first),
                                          torch.as_tensor(second)).numpy()
expected = np.zeros((10, 6, 4), dtype=np.float64)
for p in range(40):
    expected[first[p]] += np.outer(sens[p], feat[second[p]])
print(json.dumps({"at_import": loaded_at_import, "after_call": "torch._dynamo" in sys.modules,
                  "max_err": float(np.abs(env - expected).max()), "max": float(np.abs(expected).max())}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["at_import"] is False
    assert out["after_call"] is True
    assert out["max"] > 1.0 and out["max_err"] <= 1e-5 * out["max"]


def test_flushing_subnormals_keeps_energy_forces_and_gradients_to_float32_rounding():
    """The model code flushes subnormal floats to zero (``compute.configure_torch``: the network's Gaussian
    sensitivities underflow for far pairs, and subnormal arithmetic is ~100x slower on x86). Known answers: with
    the flag a subnormal times one is zero, without it itself; on a liquid frame whose sensitivities do underflow
    (the default network's width, 16 sensitivities to 8 Å) the energy, forces and training gradients with and
    without the flag agree to float32 rounding."""
    from hippynn.graphs import GraphModule

    from cgtransfer.compute import configure_torch

    torch.set_flush_denormal(False)  # (the model code imported by earlier tests set it)
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert float(tiny) > 0.0  # a subnormal float32
    network = dict(NETWORK, n_features=16, n_sensitivities=16, dist_soft_min=2.5, dist_soft_max=7.0,
                   dist_hard_max=8.0)
    box = np.array([18.0, 18.0, 18.0])
    pos = random_liquid(80, box, 3.0, seed=5)
    species = np.ones(80, dtype=np.int64)
    out = {}
    try:
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            assert float(tiny * 1.0) == (0.0 if flush else float(tiny))
            torch.manual_seed(0)
            nodes = cgmodel.build_graph(1, network, PRIOR)
            gm = GraphModule([nodes["species"], nodes["positions"], nodes["cells"]],
                             [nodes["energy"], nodes["forces"]]).float()
            if not flush:  # the frame really underflows: some sensitivity is below float32's smallest normal
                sens = next(m for m in gm.modules() if type(m).__name__ == "InverseSensitivityModule")
                r = torch.linspace(2.8, 8.0, 200)
                assert bool((sens(r) < torch.finfo(torch.float32).tiny).any())
            s = torch.as_tensor(species[None])
            x = torch.as_tensor(pos[None], dtype=torch.float32)
            c = torch.as_tensor(np.diag(box)[None], dtype=torch.float32)
            e, f = gm(s, x, c)
            (e.sum() + (f ** 2).sum()).backward()
            out[flush] = (e.detach(), f.detach(), [p.grad.detach().clone() for p in gm.parameters()
                                                   if p.grad is not None])
    finally:
        configure_torch()  # the flag as the model code leaves it
    assert float(tiny * 1.0) == 0.0  # the model code's setting flushes
    (e0, f0, g0), (e1, f1, g1) = out[False], out[True]
    eps = float(torch.finfo(torch.float32).eps)
    assert float((e0 - e1).abs().max()) <= 4 * eps * float(e0.abs().max())
    assert float(f0.abs().max()) > 1.0
    assert float((f0 - f1).abs().max()) <= 16 * eps * float(f0.abs().max())
    assert len(g0) == len(g1) > 0
    for a, b in zip(g0, g1):
        assert float((a - b).abs().max()) <= 64 * eps * float(a.abs().max()) + 1e-30



@pytest.mark.parametrize("n_types,layers", [(1, 1), (2, 2)])
def test_neighbour_block_evaluation_gives_hippynns_energy_and_forces(n_types, layers):
    """MD and the force-error stage evaluate the network on the CPU with ``hipnn_graph.evaluate_fast_on_cpu``:
    the interaction layers' environment sums per bead as one batched matrix product over neighbour blocks, and
    the sensitivities' exponent bounded at ln(smallest normal float) + 8. The same sums in another order: on a liquid
    frame (one bead type and one layer, as the default; two types and two layers, whose second layer sums
    16-feature neighbours) energy and forces equal hippynn's own evaluation to float64 rounding, and in float32
    to a few units in the last place; every interaction layer and sensitivity is switched."""
    from hippynn.graphs import GraphModule

    network = dict(NETWORK, n_features=16, n_sensitivities=16, dist_soft_min=2.5, dist_soft_max=7.0,
                   dist_hard_max=8.0, n_interaction_layers=layers)
    box = np.array([18.0, 18.0, 18.0])
    pos = random_liquid(80, box, 3.0, seed=7)
    species = np.array([1, 2] * 40)[:80] if n_types == 2 else np.ones(80, dtype=np.int64)
    for dtype, rel_e, rel_f in ((torch.float64, 1e-12, 1e-11), (torch.float32, 8e-7, 4e-6)):
        torch.manual_seed(0)
        nodes = cgmodel.build_graph(n_types, network, PRIOR)
        gm = GraphModule([nodes["species"], nodes["positions"], nodes["cells"]],
                         [nodes["energy"], nodes["forces"]]).to(dtype)
        for p in gm.parameters():
            p.requires_grad_(False)
        args = (torch.as_tensor(species[None]), torch.as_tensor(pos[None], dtype=dtype),
                torch.as_tensor(np.diag(box)[None], dtype=dtype))
        e0, f0 = (t.detach() for t in gm(*args))
        assert cgmodel.evaluate_fast_on_cpu(gm) == 2 * layers  # each layer and its sensitivity
        e1, f1 = (t.detach() for t in gm(*args))
        assert float(f0.abs().max()) > 1.0
        assert float((e0 - e1).abs().max()) <= rel_e * float(e0.abs().max()), dtype
        assert float((f0 - f1).abs().max()) <= rel_f * float(f0.abs().max()), dtype
