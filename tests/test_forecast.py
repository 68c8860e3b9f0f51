"""forecast: exact per-mode loss, distances and per-PC energies, recomputed independently through the
public API; the chosen schedule meets the budget and the next milder one in its family does not."""

import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit.forecast import FAMILIES, family_times, forecast


def rel_error_1d(data, law, order):
    """The budget quantity from the coefficients of the exact law: sum (a(p) - a(data))^2 / sum a(data)^2."""
    ad = np.asarray(hl.hermite_coefficients(data, order).values)[1:]
    ap = np.asarray(hl.hermite_coefficients(law, order).values)[1:]
    return float(np.sum((ap - ad) ** 2) / np.sum(ad**2))


@pytest.fixture(scope="module")
def bimodal_fc():
    data = hl.datasets.preset("bimodal-1d")
    return data, forecast(data, 0.5, 0.1, 10, 0.05, order=8)


def test_chosen_schedules_meet_the_budget_and_milder_ones_do_not(bimodal_fc):
    data, fc = bimodal_fc
    assert fc.spectral_error[-1] > fc.budget  # constant t0 fails: annealing is needed
    for fam, s in fc.search.items():
        chosen = s["chosen"]
        assert chosen is not None, fam
        times = family_times(fam, 0.1, chosen["value"], 10)
        np.testing.assert_allclose(chosen["times"], times)
        p_N = hl.generation(data, 0.5, times, 10)
        err = rel_error_1d(data, p_N, 8)
        assert err == pytest.approx(chosen["error"], rel=1e-9)
        assert err <= fc.budget
        milder = s["next_milder"]
        grid = list(FAMILIES[fam][1])
        assert milder["value"] == grid[grid.index(chosen["value"]) - 1]
        err_milder = rel_error_1d(data, hl.generation(data, 0.5, family_times(fam, 0.1, milder["value"], 10), 10), 8)
        assert err_milder > fc.budget
    rec = fc.recommended
    assert rec["times"][-1] == max(s["chosen"]["times"][-1] for s in fc.search.values())


def test_mode_loss_and_error_per_generation_match_exact_laws(bimodal_fc):
    data, fc = bimodal_fc
    ad = np.asarray(hl.hermite_coefficients(data, 8).values)
    aN = np.asarray(hl.hermite_coefficients(hl.generation(data, 0.5, 0.1, 10), 8).values)
    np.testing.assert_allclose(fc.mode_loss, 1 - aN / ad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fc.data_energies, ad**2, rtol=1e-12)
    for n in (0, 1, 4, 10):
        assert fc.spectral_error[n] == pytest.approx(rel_error_1d(data, hl.generation(data, 0.5, 0.1, n), 8), rel=1e-9, abs=1e-15)
    np.testing.assert_allclose(fc.limit_attenuation, np.asarray(hl.attenuation(np.arange(9), 0.5, 0.1)))


def test_distances_match_trajectory():
    from hermite_limit.trajectory import trajectory

    data = hl.datasets.preset("ring-2d")
    fc = forecast(data, 0.3, 0.2, 4, 0.1, order=6)
    tr = trajectory(data, 0.3, 0.2, 4)
    np.testing.assert_allclose(fc.gelbrich_to_data, tr.gelbrich_to_data, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(fc.w2_pc1_to_data, tr.w2_pc1_to_data, rtol=1e-9, atol=1e-12)


def test_per_pc_energies_match_projected_generation():
    data = hl.datasets.preset("seed-gmm10")
    fc = forecast(data, 0.5, 0.1, 6, 0.05, order=6, n_pcs=3)
    p_N = hl.generation(data, 0.5, 0.1, 6)
    for j, u in enumerate(fc.pc_directions):
        e_data = np.asarray(hl.hermite_coefficients(data.project(u), 6).values) ** 2
        e_N = np.asarray(hl.hermite_coefficients(p_N.project(u), 6).values) ** 2
        np.testing.assert_allclose(fc.pc_data_energies[j], e_data, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(fc.pc_generation_energies[j], e_N, rtol=1e-8, atol=1e-13)
        assert fc.pc_energy_lost[j] == pytest.approx(1 - e_N[1:].sum() / e_data[1:].sum(), rel=1e-8)
    assert list(fc.pc_rank) == list(np.argsort(-fc.pc_energy_lost, kind="stable"))
    # high-d data energies: the exact series
    np.testing.assert_allclose(fc.data_energies, np.asarray(hl.energy_spectrum(data, 6).energies), rtol=1e-12)


def test_budget_edge_cases():
    data = hl.datasets.preset("bimodal-1d")
    loose = forecast(data, 0.5, 0.1, 5, 0.99, order=6)
    assert loose.recommended["value"] in (0.0, 1.0) and loose.recommended["rule"].startswith("constant")
    assert all(s["next_milder"] is None for s in loose.search.values())
    tight = forecast(data, 0.05, 0.5, 3, 1e-9, order=6)
    assert tight.recommended is None and all(s["chosen"] is None for s in tight.search.values())
    js = tight.to_json()
    assert js["recommended"] is None and js["constant_meets_budget"] is False


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": 0.0}, "budget must lie in"), ({"budget": 2.0}, "budget must lie in"),
    ({"alpha": 2.0}, "alpha"), ({"t0": -1.0}, "t0"), ({"generations": 0}, "generations"), ({"order": 0}, "order"),
])
def test_bad_arguments(kwargs, message):
    args = dict(alpha=0.5, t0=0.1, generations=3, budget=0.1)
    args.update(kwargs)
    order = args.pop("order", 4)
    with pytest.raises(ValueError, match=message):
        forecast(hl.datasets.preset("bimodal-1d"), order=order, **args)


def test_samples_input_and_json_roundtrip():
    import json

    x = np.random.default_rng(1).standard_normal((30, 2)) + 1.0
    fc = forecast(x, 0.5, 0.1, 3, 0.2, order=4)
    js = json.loads(json.dumps(fc.to_json()))
    assert js["dim"] == 2 and len(js["spectral_error"]) == 4 and len(js["pc_energy_lost"]) == 2
