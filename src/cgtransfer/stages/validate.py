"""Stage validate: a system checked against answers known without the CG workflow (config ``systems.<s>.validation``).

For an identity mapping (one bead per atom, e.g. Lennard-Jones argon) the CG force field that force matching must
recover is the all-atom one: the mapped forces equal the all-atom forces, and the pair force of MS-CG equals the
force field's pair force, which is evaluated here by OpenMM itself on two atoms (no hand-typed LJ formula). For
every system with a literature first-peak position, the reference RDF's first peak is checked against it. Model
results (held-out force R^2, RDF error against the reference noise, NPT density error against its standard error)
are collected with their criterion; a check that fails is reported as failed, not raised: it is a result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cgtransfer import units
from cgtransfer.io import read_json


def exact_pair_force(forcefield_xml, template_pdb, reference_md: dict, r_A: np.ndarray) -> np.ndarray:
    """The force between two atoms of a one-atom template (kcal/mol/Å, positive = repulsive) at separations
    ``r_A``, from OpenMM with the reference's force field, cutoff and method (``forcefields.create_system``)."""
    import openmm
    import openmm.unit as u
    from openmm import app

    from cgtransfer.md.box import replicate_topology
    from cgtransfer.md.forcefields import create_system

    template = app.PDBFile(str(template_pdb)).topology
    if template.getNumAtoms() != 1:
        raise ValueError(f"{template_pdb}: the exact pair force needs a one-atom template (identity mapping), "
                         f"it has {template.getNumAtoms()} atoms")
    top = replicate_topology(template, 2)
    cutoff_nm = reference_md["nonbonded_cutoff_nm"]
    edge = 4.0 * cutoff_nm + 1.0
    top.setPeriodicBoxVectors(((edge, 0, 0), (0, edge, 0), (0, 0, edge)) * u.nanometer)
    system = create_system(forcefield_xml, top, cutoff_nm, "none", reference_md["ewald_error_tolerance"],
                           reference_md["dispersion_correction"])
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    out = np.empty(len(r_A))
    for i, r in enumerate(np.asarray(r_A, dtype=float)):
        context.setPositions(np.array([[0.0, 0.0, 0.0], [units.angstrom_to_nm(r), 0.0, 0.0]]) * u.nanometer)
        f = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer)
        out[i] = units.force_openmm_to_model(f[1, 0])  # force on the second atom along +x: repulsion is positive
    return out


def _openmm_context(forcefield_xml, template_pdb, reference_md: dict, n_atoms: int, edge_nm: float,
                   dispersion_correction: bool):
    import openmm
    import openmm.unit as u
    from openmm import app

    from cgtransfer.md.box import replicate_topology
    from cgtransfer.md.forcefields import create_system

    top = replicate_topology(app.PDBFile(str(template_pdb)).topology, n_atoms)
    top.setPeriodicBoxVectors(((edge_nm, 0, 0), (0, edge_nm, 0), (0, 0, edge_nm)) * u.nanometer)
    system = create_system(forcefield_xml, top, reference_md["nonbonded_cutoff_nm"], "none",
                           reference_md["ewald_error_tolerance"], dispersion_correction)
    return openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))


def tail_pressure_bar(forcefield_xml, template_pdb, reference_md: dict, n_atoms: int, rho_A3: float,
                      g_at_cutoff: float = 1.0) -> dict:
    """What a CG model that recovers the all-atom pair force exactly but has no energy jump at its cutoff lacks
    in pressure, against the all-atom truncated LJ with the long-range correction (the MC barostat samples the
    energy, jump included): the correction's own E_lrc/V (OpenMM: the energy of ``n_atoms`` atoms with it minus
    without it, E_lrc = -C N^2/V, so -dE/dV = E_lrc/V) plus the impulsive term of the truncation,
    (2 pi / 3) rho^2 rc^3 u(rc) g(rc), with u(rc) the OpenMM pair energy just inside the cutoff. Together, the
    textbook tail pressure (16/3) pi rho^2 eps sigma^3 [(2/3)(sigma/rc)^9 - (sigma/rc)^3] (for g(rc) = 1)."""
    import openmm.unit as u

    edge_nm = units.angstrom_to_nm((n_atoms / rho_A3) ** (1.0 / 3.0))
    positions = np.random.default_rng(0).uniform(0, edge_nm, size=(n_atoms, 3)) * u.nanometer
    energies = []
    for correction in (True, False):
        context = _openmm_context(forcefield_xml, template_pdb, reference_md, n_atoms, edge_nm, correction)
        context.setPositions(positions)
        energies.append(context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole))
    volume = n_atoms / rho_A3
    p_lrc = units.kj_to_kcal(energies[0] - energies[1]) / volume * units.BAR_PER_KCAL_MOL_A3
    rc_nm = reference_md["nonbonded_cutoff_nm"]
    pair = _openmm_context(forcefield_xml, template_pdb, reference_md, 2, 4 * rc_nm + 1.0, False)
    pair.setPositions(np.array([[0.0, 0, 0], [rc_nm * (1 - 1e-9), 0, 0]]) * u.nanometer)
    u_rc = units.kj_to_kcal(pair.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole))
    rc_A = units.nm_to_angstrom(rc_nm)
    p_jump = 2.0 * np.pi / 3.0 * rho_A3**2 * rc_A**3 * u_rc * g_at_cutoff * units.BAR_PER_KCAL_MOL_A3
    return {"dispersion_correction_bar": float(p_lrc), "truncation_jump_bar": float(p_jump),
            "total_bar": float(p_lrc + p_jump), "u_at_cutoff_kcal_mol": float(u_rc), "g_at_cutoff": float(g_at_cutoff)}


def mapped_force_identity(dataset_npz, forces_npz) -> dict:
    """Largest difference between the mapped bead forces and the all-atom forces (identity mapping: bead i is atom
    i), absolute (kcal/mol/Å) and relative to the RMS force."""
    with np.load(dataset_npz) as cg, np.load(forces_npz) as aa:
        mapped = cg["forces"].astype(np.float64)
        atomistic = units.force_openmm_to_model(aa["forces_kj_mol_nm"].astype(np.float64))
    if mapped.shape != atomistic.shape:
        raise ValueError(f"{dataset_npz}: {mapped.shape[1]} beads for {atomistic.shape[1]} atoms: not an identity mapping")
    diff = float(np.abs(mapped - atomistic).max())
    rms = float(np.sqrt(np.mean(atomistic**2)))
    return {"max_abs_difference_kcal_mol_A": diff, "rms_force_kcal_mol_A": rms, "relative": diff / rms}


def pair_force_recovery(pair_table_csv, exact_force, r_max_A: float) -> dict:
    """An MS-CG pair table against the exact pair force over the sampled range (outside the repulsive wall, below
    ``r_max_A``): RMS and largest error, relative to the RMS exact force there, and the zero-force distance."""
    table = pd.read_csv(pair_table_csv)
    if table["pair"].nunique() != 1:
        raise ValueError(f"{pair_table_csv}: the exact-pair-force check handles one bead-type pair")
    sampled = table[~table["inside_wall"] & (table["r_A"] < r_max_A)]
    r = sampled["r_A"].to_numpy()
    fit = sampled["force_kcal_mol_A"].to_numpy()
    exact = exact_force(r)
    err = fit - exact
    zero = lambda f: float(np.interp(0.0, -f[: np.argmin(f) + 1], r[: np.argmin(f) + 1]))  # noqa: E731 (f decreasing)
    return {"r_from_A": float(r[0]), "r_to_A": float(r[-1]),
            "rms_error_kcal_mol_A": float(np.sqrt(np.mean(err**2))), "max_abs_error_kcal_mol_A": float(np.abs(err).max()),
            "rms_exact_kcal_mol_A": float(np.sqrt(np.mean(exact**2))),
            "relative_rms_error": float(np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(exact**2))),
            "zero_force_r_A_fit": zero(fit), "zero_force_r_A_exact": zero(exact),
            "curve": {"r_A": r.tolist(), "fit": fit.tolist(), "exact": exact.tolist()}}


def reference_density_pressure_stderr(metrics: dict, state: str) -> float:
    """The pressure equivalent (bar) of the reference density's standard error at an NPT state,
    delta rho / (rho kappa_T), from any compare metrics of that state (0 at NVT states or without them)."""
    for (_, st), path in sorted(metrics.items()):
        if st != state:
            continue
        m = read_json(path)
        rho, err, kappa = (m.get(k) for k in ("density_aa_g_cm3", "density_aa_stderr_g_cm3", "compressibility_aa_per_bar"))
        if m.get("pressure_aa_stderr_bar") == 0.0 and all(v is not None and np.isfinite(v) and v > 0 for v in (rho, err, kappa)):
            return float(err / rho / kappa)
        return 0.0
    return 0.0


# the long-range tail a volume term must reproduce is computed with g(r) = 1 beyond the cutoff and g(r_c) from
# the reference RDF: an estimate, good to a few per cent; a fitted term further off than its statistical error
# allows plus this fraction fails (mscg_T87 in an earlier default run, 17 % low at 3.2 standard errors, does)
TAIL_SYSTEMATIC = 0.05


def validate_system(system: str, spec: dict, states: list[str], reference_summaries: dict, mapped: dict,
                    pair_tables: dict, metrics: dict, forcefield_xml=None, template_pdb=None,
                    reference_md: dict | None = None, mscg_cutoff_A: float | None = None,
                    volume_terms: dict | None = None, reference_rdfs: dict | None = None) -> dict:
    """The known-answer checks of one system. ``reference_summaries``: state → mapped-reference summary.json;
    ``mapped``: state → (dataset.npz, forces.npz); ``pair_tables``: MS-CG model → pair_table.csv;
    ``metrics``: (model, state) → compare metrics.json; ``volume_terms``: model → volume_term.json;
    ``reference_rdfs``: state → mapped-reference rdf.csv (g at the cutoff) (paths)."""
    out = {"system": system, "checks": []}

    def check(name, value, criterion, passed, **extra):
        out["checks"].append({"check": name, "value": value, "criterion": criterion, "passed": bool(passed), **extra})

    if spec.get("identity_mapping"):
        for state in states:
            res = mapped_force_identity(*mapped[state])
            check(f"mapped forces = all-atom forces ({state})", res["relative"],
                  "max |F_mapped - F_AA| / RMS F < 1e-6 (float32 storage)", res["relative"] < 1e-6, **res)
        r_grid = np.arange(2.5, (mscg_cutoff_A or 10.0) + 1e-9, 0.01)
        exact = exact_pair_force(forcefield_xml, template_pdb, reference_md, r_grid)
        out["exact_pair_force"] = {"r_A": r_grid.tolist(), "force_kcal_mol_A": exact.tolist()}
        for model, path in sorted(pair_tables.items()):
            res = pair_force_recovery(path, lambda r: np.interp(r, r_grid, exact), mscg_cutoff_A or r_grid[-1])
            out.setdefault("mscg_pair_force", {})[model] = res
            check(f"MS-CG pair force = force-field pair force ({model})", res["relative_rms_error"],
                  "RMS error over the sampled range < 5 % of the RMS exact force there",
                  res["relative_rms_error"] < 0.05, zero_force_r_A_fit=res["zero_force_r_A_fit"],
                  zero_force_r_A_exact=res["zero_force_r_A_exact"])
        if reference_md.get("dispersion_correction") and volume_terms:
            # the volume term of an identity-mapped model must be the all-atom dispersion correction
            for model, path in sorted(volume_terms.items()):
                fit = read_json(path)
                for point in fit.get("points", []):
                    with np.load(mapped[point["state"]][0]) as d:
                        n_atoms = d["positions"].shape[1]
                    rdf = pd.read_csv(reference_rdfs[point["state"]]) if reference_rdfs else None
                    rc_A = units.nm_to_angstrom(reference_md["nonbonded_cutoff_nm"])
                    g_rc = float(np.interp(rc_A, rdf["r_A"], rdf["g"])) if rdf is not None and rdf["r_A"].max() >= rc_A else 1.0
                    tail = tail_pressure_bar(forcefield_xml, template_pdb, reference_md, n_atoms, point["rho_A3"], g_rc)
                    exact = tail["total_bar"]  # the CG model lacks it: the term must add it
                    shift, se_cg = point["pressure_shift_bar"], point["stderr_bar"]
                    # at an NPT state the CG pressure was measured in the reference's mean box, itself uncertain:
                    # its density's standard error moves the target by delta rho / (rho kappa_T)
                    se_aa = reference_density_pressure_stderr(metrics, point["state"])
                    se = float(np.hypot(se_cg, se_aa))
                    check(f"volume term = long-range tail ({model}, {point['state']})", shift,
                          f"pressure shift within 2 standard errors (CG pressure and reference density) + a "
                          f"systematic bound of {100 * TAIL_SYSTEMATIC:g} % of the exact {exact:.1f} bar",
                          abs(shift - exact) < 2 * se + TAIL_SYSTEMATIC * abs(exact), exact_bar=exact, stderr_bar=se,
                          deviation_pct=100.0 * (shift - exact) / abs(exact),
                          stderr_cg_bar=se_cg, stderr_reference_density_bar=se_aa, **tail)
    if "first_peak_A" in spec:
        for state in states:
            rdfs = read_json(reference_summaries[state])["rdf"]
            pair, first = next(iter(rdfs.items()))
            r_peak = first["first_peak_r_A"]
            r_bins = pd.read_csv(reference_rdfs[state])["r_A"].to_numpy() if reference_rdfs else None
            width = float(np.median(np.diff(r_bins))) if r_bins is not None and len(r_bins) > 1 else 0.1
            tolerance = max(0.5 * width + 0.05, 0.1)  # the bin holding the peak, and 0.05 Å of the literature's reading
            check(f"reference first RDF peak ({state}, {pair})", r_peak,
                  f"within {tolerance:.2f} Å of {spec['first_peak_A']} Å ({spec.get('first_peak_source', 'literature')}; "
                  f"half a {width:.2f}-Å bin + 0.05 Å)", abs(r_peak - spec["first_peak_A"]) <= tolerance)
    r2_min = spec.get("force_r2_min")
    for (model, state), path in sorted(metrics.items()):
        m = read_json(path)
        if r2_min is not None and m.get("kind") in ("hipnn", "hipnn_t") and m.get("in_training") \
                and not model.endswith("_vol"):
            check(f"held-out force R^2 ({model}, {state})", m["force_r2"], f">= {r2_min}", m["force_r2"] >= r2_min)
        if spec.get("identity_mapping") and m.get("stable", True):
            if np.isfinite(m.get("rdf_mae_over_noise", np.nan)) and m.get("in_training"):
                ratio, se = m["rdf_mae_over_noise"], m["rdf_mae_over_noise_stderr"]
                check(f"CG RDF = reference within noise ({model}, {state})", ratio,
                      "RDF error / reference noise floor < 1.5 (+ 2 standard errors)", ratio < 1.5 + 2 * se, stderr=se)
            # the density only with the volume term: forces carry no trace of the all-atom dispersion correction
            # (a pure volume term), so an uncorrected model is expected to be low by its pressure (checked above)
            if np.isfinite(m.get("density_error_pct", np.nan)) and model.endswith("_vol"):
                err, se = m["density_error_pct"], m["density_error_pct_stderr"]
                check(f"CG NPT density = reference ({model}, {state})", err,
                      "|density error| < 2 standard errors + 0.5 %", abs(err) < 2 * se + 0.5, stderr_pct=se)
    out["n_checks"] = len(out["checks"])
    out["n_passed"] = sum(c["passed"] for c in out["checks"])
    return out


def validation_figure(result: dict, title: str):
    """MS-CG pair forces against the exact force-field pair force (identity mapping)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_err) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    exact = result.get("exact_pair_force")
    curves = result.get("mscg_pair_force", {})
    if exact:
        ax.plot(exact["r_A"], exact["force_kcal_mol_A"], "k-", lw=2, label="force field (OpenMM, exact)")
    for model, res in curves.items():
        c = res["curve"]
        ax.plot(c["r_A"], c["fit"], lw=1, label=f"MS-CG {model}")
        ax_err.plot(c["r_A"], np.asarray(c["fit"]) - np.asarray(c["exact"]), lw=1)
    lo = min((res["r_from_A"] for res in curves.values()), default=3.0)
    ax.set_xlim(lo - 0.3, None)
    if curves:
        top = max(max(np.abs(res["curve"]["exact"])) for res in curves.values())
        ax.set_ylim(-0.3 * top, 1.1 * top)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("pair force (kcal/mol/Å, + repulsive)")
    ax.legend(fontsize=7)
    ax.set_title(title)
    ax_err.axhline(0, color="grey", lw=0.5)
    ax_err.set_xlabel("r (Å)")
    ax_err.set_ylabel("fit - exact")
    if not curves:
        ax.text(0.5, 0.5, "no identity-mapping pair-force check", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    return fig
