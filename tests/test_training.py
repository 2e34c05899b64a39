import numpy as np
import pytest

from cgtransfer.analysis.statistics import force_metrics
from cgtransfer.kinds.training_data import prior_parameters, thinned, training_data
from cgtransfer.dataset import time_block_split


def test_time_block_split_is_contiguous_and_test_last():
    tr, va, te = time_block_split(100, 0.1, 0.1)
    assert tr.tolist() == list(range(80)) and va.tolist() == list(range(80, 90)) and te.tolist() == list(range(90, 100))
    tr, va, te = time_block_split(7, 0.1, 0.1)
    assert len(va) == len(te) == 1 and len(tr) == 5
    with pytest.raises(ValueError):
        time_block_split(2, 0.1, 0.1)


def test_thinned_train_block_keeps_evenly_spaced_frames():
    block = np.arange(10, 74)  # a state's 64-frame train block
    assert thinned(block, None) is block and thinned(block, 64) is block and thinned(block, 100) is block
    kept = thinned(block, 16)
    assert len(kept) == 16 and kept[0] == 10 and kept[-1] == 73 and np.all(np.diff(kept) >= 4)
    assert np.all(np.diff(kept) <= 5) and len(set(kept.tolist())) == 16


def test_a_model_trained_on_fewer_frames_per_state_sees_only_those(argon_cg):
    """train_frames_per_state thins each state's train block and leaves valid and test whole (the held-out
    errors of every model are measured on the same frames)."""
    paths = ([argon_cg["dataset"]] * 2, [argon_cg["summary"]] * 2, ["A", "B"])
    prior = {"width_A": 0.15, "force_fraction_at_onset": 0.05}
    cfg = {"valid_fraction": 0.1, "test_fraction": 0.1}
    whole = training_data(*paths, prior, cfg)
    thin = training_data(*paths, prior, {**cfg, "train_frames_per_state": 5})
    assert len(thin.splits["train"]) == 10 < len(whole.splits["train"])
    # the unused frames are gone (hippynn's database must hold exactly its splits); every kept frame is the same
    n_used = sum(len(v) for v in thin.splits.values())
    assert len(thin.frame_state) == len(thin.arrays["positions"]) == n_used
    assert sorted(np.concatenate(list(thin.splits.values())).tolist()) == list(range(n_used))
    assert [thin.frame_state[i] for i in thin.splits["train"]] == ["A"] * 5 + ["B"] * 5
    for split in ("train", "valid", "test"):
        whole_forces = whole.arrays["forces"][whole.splits[split]]
        thin_forces = thin.arrays["forces"][thin.splits[split]]
        if split == "train":  # every thinned train frame is one of the whole block's
            assert all(any(np.array_equal(f, g) for g in whole_forces) for f in thin_forces)
        else:
            np.testing.assert_array_equal(thin_forces, whole_forces)


@pytest.mark.parametrize("kind", ["hipnn", "mscg"])
def test_both_kinds_fit_on_thinned_train_blocks(kind, argon_cg, tmp_path):
    """A fit on two states with train_frames_per_state trains on exactly those frames (hippynn's database holds
    only the splits; MS-CG's least squares reads the same train frames)."""
    from conftest import TINY_NETWORK, TINY_TRAINING
    from cgtransfer.stages.train import train_model

    train_cfg = {**TINY_TRAINING, "train_frames_per_state": 4}
    settings = {"network": TINY_NETWORK, "training": TINY_TRAINING} if kind == "hipnn" else {
        "mscg": {"cutoff_A": 7.0, "knot_spacing_A": 0.25, "spline_degree": 3, "regularization": [1e-6, 1e-3],
                 "cv_folds": 2, "selection_tolerance": 0.001, "table_spacing_A": 0.005}, "training": TINY_TRAINING}
    record = train_model(kind, [argon_cg["dataset"]] * 2, [argon_cg["summary"]] * 2, ["A", "B"], settings,
                         {"width_A": 0.15, "force_fraction_at_onset": 0.05}, train_cfg, tmp_path / "checkpoint",
                         label=f"argon/{kind}_thin")
    assert record["train_frames"] == 8 and (tmp_path / "checkpoint").is_dir()


def test_force_metrics_known_answers():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(10, 5, 3))
    perfect = force_metrics(ref, ref)
    assert perfect["force_rmse_kcal_mol_A"] == 0 and perfect["force_r2"] == 1.0
    mean = force_metrics(np.full_like(ref, ref.mean()), ref)
    assert mean["force_r2"] == pytest.approx(0.0, abs=1e-12)
    shifted = force_metrics(ref + 0.5, ref)
    assert shifted["force_rmse_kcal_mol_A"] == pytest.approx(0.5) and shifted["force_mae_kcal_mol_A"] == pytest.approx(0.5)


def test_prior_parameters_from_reference():
    data = [{"forces": np.array([[1.0, -3.0]])}, {"forces": np.array([[2.0, -2.0]])}]
    summaries = [{"rdf": {"A-A": {"onset_A": 3.1}}}, {"rdf": {"A-A": {"onset_A": 2.9}}}]
    p = prior_parameters(data, summaries, {"width_A": 0.2, "force_fraction_at_onset": 0.05})
    assert p == {"onset": 2.9, "strength": 2.0, "width": 0.2, "fraction": 0.05}


def test_mismatched_inputs_are_named(tiny_model, argon_cg, argon_run, tmp_path):
    """A checkpoint meeting another system's data, and a force file that does not belong to its topology, stop
    with an error naming the file and what does not match."""
    from cgtransfer.stages import mapping
    from cgtransfer.kinds.registry import load_model

    model = load_model(tiny_model)
    model.check_data(argon_cg["cg"], "argon.npz")  # its own data: fine
    with pytest.raises(ValueError, match=r"water\.npz: its bead types \['OW'\] differ from those the hipnn model .* "
                                         r"was trained on \['AR'\]"):
        model.check_data({"bead_types": np.array(["OW"])}, "water.npz")
    d = argon_run["dir"]
    forces = dict(np.load(d / "forces.npz"))
    forces["forces_kj_mol_nm"] = forces["forces_kj_mol_nm"][:, :-1]  # one atom short
    np.savez(tmp_path / "forces.npz", **forces)
    with pytest.raises(ValueError, match=r"forces\.npz holds forces on 107 atoms but .*topology\.pdb has 108"):
        mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", tmp_path / "forces.npz", {"AR": {"AR": ["AR"]}})


def test_corrupted_inputs_are_named(argon_run, argon_cg, tmp_path):
    """A truncated trajectory, a force file with fewer frames than the trajectory, a topology the mapping does not
    fit, a truncated or internally inconsistent dataset: each stops with the file and what does not match."""
    from cgtransfer.stages import mapping
    from cgtransfer.io import write_npz
    from cgtransfer.dataset import load_dataset

    d = argon_run["dir"]
    argon = {"AR": {"AR": ["AR"]}}
    # a trajectory cut in the middle of a frame (a job killed while writing, a full disk)
    dcd = (d / "trajectory.dcd").read_bytes()
    (tmp_path / "cut.dcd").write_bytes(dcd[: len(dcd) * 2 // 3])
    with pytest.raises(ValueError, match=r"cut\.dcd"):
        mapping.map_trajectory(d / "topology.pdb", tmp_path / "cut.dcd", d / "forces.npz", argon)
    # forces of fewer frames than the trajectory
    forces = dict(np.load(d / "forces.npz"))
    forces["forces_kj_mol_nm"] = forces["forces_kj_mol_nm"][:-2]
    np.savez(tmp_path / "short_forces.npz", **forces)
    with pytest.raises(ValueError, match=r"trajectory\.dcd has 30 frames but .*short_forces\.npz has 28"):
        mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", tmp_path / "short_forces.npz", argon)
    # a topology the mapping does not fit (a mapping for another molecule)
    with pytest.raises(ValueError, match=r"topology\.pdb does not match the mapping: residue AR .*has no entry"):
        mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz", {"MOH": {"M": ["C"]}})
    # datasets: its own is fine; truncated file, a bead count that differs between arrays, foreign species
    assert load_dataset(argon_cg["dataset"])["positions"].shape == (30, 108, 3)
    (tmp_path / "truncated.npz").write_bytes(argon_cg["dataset"].read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated\.npz: cannot read the mapped dataset"):
        load_dataset(tmp_path / "truncated.npz")
    cg = dict(argon_cg["cg"])
    write_npz(tmp_path / "beads.npz", **{**cg, "masses": cg["masses"][:-1]})
    with pytest.raises(ValueError, match=r"beads\.npz: 'masses' has shape \(107,\) but 30 frames of 108 beads need"):
        load_dataset(tmp_path / "beads.npz")
    write_npz(tmp_path / "species.npz", **{**cg, "species": cg["species"] + 1})
    with pytest.raises(ValueError, match=r"species\.npz: species numbers outside 1\.\.1"):
        load_dataset(tmp_path / "species.npz")


def test_resume_point_is_the_newest_complete_checkpoint(tmp_path, monkeypatch):
    """What a killed training relies on, without timing: hippynn writes checkpoint_epoch_<n>.pt in place, so a kill
    can leave the newest one cut short (or empty, opened but not yet written); the resume point is then the newest
    file torch can read, and the cut one is removed. The pruning callback (run before epoch n's checkpoint is
    written) keeps epoch n - 1, so a complete checkpoint survives a kill at any moment after the first."""
    import torch

    from cgtransfer.kinds.hipnn import latest_epoch_checkpoint, prune_epoch_checkpoints

    def save(epoch):
        torch.save({"epoch": epoch, "weights": torch.arange(1000.0)}, tmp_path / f"checkpoint_epoch_{epoch}.pt")

    assert latest_epoch_checkpoint(tmp_path) is None  # a fresh start
    for epoch in (2, 3):
        save(epoch)
    whole = (tmp_path / "checkpoint_epoch_3.pt").read_bytes()
    (tmp_path / "checkpoint_epoch_4.pt").write_bytes(whole[: len(whole) // 2])  # killed while writing epoch 4
    (tmp_path / "checkpoint_epoch_x.pt").write_bytes(b"")  # not an epoch number: ignored
    assert latest_epoch_checkpoint(tmp_path) == tmp_path / "checkpoint_epoch_3.pt"
    assert not (tmp_path / "checkpoint_epoch_4.pt").exists() and (tmp_path / "checkpoint_epoch_x.pt").exists()
    (tmp_path / "checkpoint_epoch_5.pt").write_bytes(b"")  # killed right after opening epoch 5's file
    assert latest_epoch_checkpoint(tmp_path).name == "checkpoint_epoch_3.pt"
    # the pruning before epoch 5's checkpoint: epoch 4 (the one before) stays, older ones go
    for epoch in (4, 5):
        save(epoch)
    monkeypatch.chdir(tmp_path)
    prune_epoch_checkpoints(5, False)
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch_*.pt")) == [
        "checkpoint_epoch_4.pt", "checkpoint_epoch_5.pt", "checkpoint_epoch_x.pt"]
    assert latest_epoch_checkpoint(tmp_path).name == "checkpoint_epoch_5.pt"
