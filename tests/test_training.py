import numpy as np
import pytest

from cgtransfer.training import force_metrics, prior_parameters, time_block_split


def test_time_block_split_is_contiguous_and_test_last():
    tr, va, te = time_block_split(100, 0.1, 0.1)
    assert tr.tolist() == list(range(80)) and va.tolist() == list(range(80, 90)) and te.tolist() == list(range(90, 100))
    tr, va, te = time_block_split(7, 0.1, 0.1)
    assert len(va) == len(te) == 1 and len(tr) == 5
    with pytest.raises(ValueError):
        time_block_split(2, 0.1, 0.1)


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
