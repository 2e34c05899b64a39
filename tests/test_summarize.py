"""The statistics of the transferability study on inputs whose answer is known without the code."""

import numpy as np
import pandas as pd
import pytest

from cgtransfer.analysis.statistics import jackknife_stderr
from cgtransfer.stages.summarize import headline, headline_text


def test_jackknife_of_a_mean_is_the_standard_error_of_the_block_means():
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=50) for _ in range(6)]
    means = np.array([b.mean() for b in blocks])
    assert jackknife_stderr(blocks, lambda g: float(g.mean())) == pytest.approx(means.std(ddof=1) / np.sqrt(6))
    # a statistic that ignores the data has no sampling error
    assert jackknife_stderr(blocks, lambda g: 1.0) == 0.0


def _long(values: dict, stderr: float, info: dict) -> pd.DataFrame:
    rows = []
    for (model, state), v in values.items():
        rows.append({"model": model, "kind": info[model]["kind"], "state": state, "metric": "rdf_error_over_noise",
                     "value": v, "stderr": stderr, "stable": not np.isnan(v),
                     "in_training": state in info[model]["states"]})
    return pd.DataFrame(rows)


def _info(kind, states, training_set, held_out=None):
    return {"kind": kind, "states": states, "training_set": training_set, "held_out_state": held_out}


STATES = ["A", "B", "C"]
INFO = {
    **{f"h_{s}": _info("hipnn", [s], "each") for s in STATES},
    **{f"m_{s}": _info("mscg", [s], "each") for s in STATES},
    **{f"hl_{s}": _info("hipnn", [o for o in STATES if o != s], "leave_one_out", s) for s in STATES},
    **{f"ml_{s}": _info("mscg", [o for o in STATES if o != s], "leave_one_out", s) for s in STATES},
}


def test_headline_recovers_a_known_ratio_and_counts_unstable_cells():
    """HIP-NN-TS errors are exactly half of MS-CG's everywhere, leave-one-out models are 0.8x the single-state
    models trained elsewhere, and one MS-CG cell blew up."""
    values = {}
    for m, v in INFO.items():
        for s in STATES:
            base = 2.0 if s in v["states"] else 4.0
            if v["training_set"] == "leave_one_out":
                base = 0.8 * 4.0 if s == v["held_out_state"] else 2.0
            values[(m, s)] = base * (0.5 if v["kind"] == "hipnn" else 1.0)
    values[("m_A", "C")] = np.nan  # unstable
    h = headline(_long(values, 0.01, INFO), INFO)
    k = h["hipnn_vs_mscg"]
    # held-out twins: single-state (3 states x 2 others, one unstable) + leave-one-out (3)
    assert k["n_cells"] == 6 + 3 - 1
    assert k["geometric_mean_ratio"] == pytest.approx(0.5) and k["resolved"]
    assert k["cells_a_better"] == k["n_cells"] and k["cells_b_better"] == 0
    for kind in ("hipnn", "mscg"):
        r = h["multi_vs_single"][kind]
        assert r["multi"] == "leave_one_out (held out)" and r["n_cells"] == 3
        assert r["geometric_mean_ratio"] == pytest.approx(0.8) and r["resolved"]
        assert h["single_heldout_vs_trained"][kind]["geometric_mean_ratio"] == pytest.approx(2.0)
    assert h["unstable_cells"] == {"hipnn": [], "mscg": ["m_A@C"]}
    assert "resolved: HIP-NN-TS better" in headline_text(h)


def test_headline_is_not_resolved_inside_the_noise():
    rng = np.random.default_rng(1)
    values = {(m, s): 3.0 + rng.normal(scale=0.5) for m in INFO for s in STATES}
    h = headline(_long(values, 0.5, INFO), INFO)
    lo, hi = h["hipnn_vs_mscg"]["ratio_95ci"]
    assert lo < 1.0 < hi and not h["hipnn_vs_mscg"]["resolved"]
    assert h["hipnn_vs_mscg"]["cells_not_significant"] == h["hipnn_vs_mscg"]["n_cells"]


def test_temperature_transfer_labels_states_and_pairs_the_right_models():
    """A temperature-aware model trained at 200 and 400 K: 300 K is interpolation, 500 K extrapolation. Its twins
    are the models of the other kinds on exactly the same states, the single-state model the one trained at the
    state; the density comes from the volume-corrected variant. Known errors: aware 1.0 everywhere, blind 2.0,
    MS-CG 4.0, single-state 1.0 — so at the held-out states aware/blind = 0.5, aware/single = 1."""
    from cgtransfer.stages.summarize import temperature_headline, temperature_headline_text, temperature_transfer

    temps = {"T200": 200.0, "T300": 300.0, "T400": 400.0, "T500": 500.0}
    info = {"aware": _info("hipnn_t", ["T200", "T400"], "custom"),
            "blind": _info("hipnn", ["T200", "T400"], "custom"),
            "pair": _info("mscg", ["T200", "T400"], "custom"),
            "other": _info("hipnn", ["T200", "T300", "T400"], "custom"),  # a different set: no twin
            **{f"h_{s}": _info("hipnn", [s], "each") for s in temps}}
    info["aware_vol"] = {**info["aware"], "volume_term": True, "base_model": "aware"}
    error = {"aware": 1.0, "blind": 2.0, "pair": 4.0, "other": 9.0, **{f"h_{s}": 1.0 for s in temps}}
    rows = []
    for model, v in info.items():
        for state, t in temps.items():
            for metric, value in (("rdf_error_over_noise", error.get(model, 1.0)),
                                  ("density_error_pct", 7.0 if model == "aware" else -1.5 if model == "aware_vol" else 5.0)):
                rows.append({"model": model, "state": state, "temperature_K": t, "metric": metric, "value": value,
                             "stderr": 0.05, "stable": True})
    tt = temperature_transfer(pd.DataFrame(rows), info)
    where = dict(zip(tt["state"], tt["where"]))
    assert where == {"T200": "training", "T300": "interpolation", "T400": "training", "T500": "extrapolation"}
    at300 = tt[(tt["state"] == "T300") & (tt["metric"] == "rdf_error_over_noise")].set_index("role")["model"].to_dict()
    assert at300 == {"temperature-aware": "aware", "temperature-blind": "blind", "MS-CG": "pair", "single-state": "h_T300"}
    density = tt[(tt["metric"] == "density_error_pct") & (tt["role"] == "temperature-aware")]
    assert set(density["model"]) == {"aware_vol"} and (density["value"] == -1.5).all()
    h = temperature_headline(tt)["aware"]
    for where in ("interpolation", "extrapolation"):
        assert h[where]["vs_temperature_blind"]["geometric_mean_ratio"] == pytest.approx(0.5)
        assert h[where]["vs_single_state"]["geometric_mean_ratio"] == pytest.approx(1.0)
        assert h[where]["vs_MS_CG"]["geometric_mean_ratio"] == pytest.approx(0.25)
        assert h[where]["density_within_3pct"] is True
    assert h["interpolation"]["states"] == ["T300"] and h["extrapolation"]["states"] == ["T500"]
    text = "\n".join(temperature_headline_text({"aware": h}))
    assert "[aware] interpolation (T300)" in text and "T300 -1.5" in text
