import numpy as np
import pytest

from cgtransfer import units


def test_constants_known_values():
    assert units.ANGSTROM_PER_NM == pytest.approx(10.0)
    assert 1.0 / units.KCAL_PER_KJ == pytest.approx(4.184)
    # 1 kJ/mol/nm = 1/41.84 kcal/mol/Å
    assert units.KCAL_A_PER_KJ_NM == pytest.approx(1 / 41.84)
    # liquid water: 1 molecule (18.015 amu) in 29.915 Å³ is 1.000 g/cm³
    assert units.density_g_cm3(18.015, 0.029915) == pytest.approx(1.0, abs=1e-3)
    # k_B N_A = 8.314462618 J/mol/K
    assert units.KB_KJ_MOL_K == pytest.approx(8.314462618e-3, rel=1e-8)


def test_round_trips():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(units.angstrom_to_nm(units.nm_to_angstrom(x)), x)
    np.testing.assert_allclose(units.kcal_to_kj(units.kj_to_kcal(x)), x)
    np.testing.assert_allclose(units.force_model_to_openmm(units.force_openmm_to_model(x)), x)
    assert units.density_g_cm3(1000.0, units.volume_nm3_for_density(1000.0, 0.79)) == pytest.approx(0.79)
