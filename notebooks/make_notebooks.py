"""Write the notebooks as .ipynb (nbformat) and execute them in place with nbclient.

    python notebooks/make_notebooks.py          # from the repository root
"""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
# Figures show inline (Jupyter's default, stated explicitly); neither the notebooks nor the library choose a backend.
SETUP = "%matplotlib inline\nimport numpy as np\nimport jax\nimport matplotlib.pyplot as plt\nimport hermite_limit as hl\nfrom hermite_limit import plots"

NOTEBOOKS = {
    "01_quickstart": [
        ("md", "# Quickstart\nWhere does retraining a diffusion model on its own samples end up? With fresh-data fraction `alpha` and "
               "reverse diffusion stopped at OU time `t0`, the closed-form limit is `p_inf = sum_k alpha (1-alpha)^(k-1) P_(k t0) p_data`."),
        ("code", SETUP),
        ("code", "data = hl.datasets.preset('bimodal-1d')\nlim = hl.limit_distribution(data, alpha=0.5, t0=0.1)\n"
                 "print('terms:', lim.n_terms, 'tail mass:', lim.tail_mass)\nprint('data mean', float(data.mean()[0]), 'limit mean', float(lim.mean()[0]))"),
        ("code", "gens = {n: hl.generation(data, 0.5, 0.1, n) for n in (1, 3, 10)}\nplots.densities_1d(data, gens, lim);"),
        ("code", "w2 = hl.w2_1d(gens[10], lim)\nprint(f'W2(p_10, p_inf) = {w2.value:.3e} +- {w2.error:.1e}')"),
        ("code", "x = lim.sample(jax.random.key(0), 5)\nprint(np.asarray(x).ravel())"),
    ],
    "02_spectral_attenuation": [
        ("md", "# Spectral attenuation\nRecursive training multiplies every Hermite coefficient of total order m by "
               "`lambda_m = alpha rho^m / (1 - (1-alpha) rho^m)`: a low-pass filter."),
        ("code", SETUP),
        ("code", "plots.attenuation_plot([0.1, 0.5, 0.9], [0.05, 0.2], max_order=60);"),
        ("code", "data = hl.datasets.preset('bimodal-1d')\nlim = hl.limit_distribution(data, 0.5, 0.1)\n"
                 "a_data = np.asarray(hl.hermite_coefficients(data, 12).values)\na_lim = np.asarray(hl.hermite_coefficients(lim, 12).values)\n"
                 "lam = np.asarray(hl.attenuation(np.arange(13), 0.5, 0.1))\nprint('max |a_lim - lambda a_data| =', np.max(np.abs(a_lim - lam * a_data)))"),
        ("code", "plots.energy_spectra_plot(data, lim, 12);"),
        ("code", "modes = [1, 3, 6]\nerr = np.array([np.abs(np.asarray(hl.hermite_coefficients(hl.generation(data, 0.5, 0.1, k), 6).values)[modes]"
                 " - np.asarray(hl.hermite_coefficients(lim, 6).values)[modes]) for k in range(15)])\n"
                 "rates = np.asarray(hl.contraction_rate(np.array(modes, float), 0.5, 0.1))\nplots.mode_error_plot(err, rates, modes=modes);"),
        ("code", "gm = hl.datasets.preset('seed-gmm10')\nplots.energy_spectra_plot(gm, hl.limit_distribution(gm, 0.5, 0.2, tol=1e-8), 6, title='seed-gmm10 (d=10): energy_spectrum');"),
    ],
    "03_verifying_theorems": [
        ("md", "# Verifying the theorems\nEach check returns a record with the predicted and the measured figure."),
        ("code", SETUP + "\nfrom hermite_limit.checks import check_fixed_point, check_w2_rate, check_tv_rate"),
        ("code", "data = hl.datasets.preset('bimodal-1d')\nrecords = [check_fixed_point(data, 0.5, 0.2), check_w2_rate(data, 0.5, 0.2, n=8), check_tv_rate(data, 0.5, 0.2, n=6)]\n"
                 "for r in records:\n    print(f'{r.name:28s} predicted={r.predicted:.4g} measured={r.measured:.4g} passed={r.passed}')"),
        ("code", "records[1].figure"),
        ("code", "M = plots.discounted_contributions([0.1, 0.5, 0.9], 20)\nplots.contribution_heatmap(M, [0.1, 0.5, 0.9]);"),
    ],
    "04_annealed_schedules": [
        ("md", "# Annealed truncation schedules\nWith constant `t0` high modes stay attenuated; annealing `t_i -> 0` lets every mode recover. "
               "`hermite_limit.forecast` finds the mildest schedule that meets an error budget."),
        ("code", SETUP + "\nfrom hermite_limit.forecast import forecast"),
        ("code", "data = hl.datasets.preset('bimodal-1d')\nsch = {'constant': hl.constant(0.2), 'harmonic': hl.harmonic(0.2), 'geometric 0.8': hl.geometric(0.2, 0.8)}\n"
                 "plots.schedule_comparison(data, 0.3, sch, 20, [1, 4]);"),
        ("code", "fc = forecast(data, alpha=0.5, t0=0.1, generations=10, budget=0.05, order=8)\n"
                 "print('constant t0 error:', fc.spectral_error[-1])\nprint('recommended:', fc.recommended['family'], fc.recommended['rule'], 'error', fc.recommended['error'])"),
        ("code", "fc.figure();"),
    ],
    "05_real_images": [
        ("md", "# Real images: 8x8 digits\nThe digits (scaled to [-1, 1]) as point masses; every generation and the limit are exact mixtures we can sample."),
        ("code", SETUP),
        ("code", "data = hl.datasets.preset('digits')\nalpha, t0 = 0.5, 0.1\nkey = jax.random.key(0)\n"
                 "rows = {'data': np.asarray(data.sample(jax.random.fold_in(key, 0), 8))}\n"
                 "for n in (1, 5):\n    rows[f'generation {n}'] = np.asarray(hl.generation(data, alpha, t0, n).sample(jax.random.fold_in(key, n), 8))\n"
                 "plots.image_grid(rows, (8, 8));"),
        ("code", "E = np.asarray(hl.energy_spectrum(data, 8).energies)\nlam = np.asarray(hl.attenuation(np.arange(9), alpha, t0))\n"
                 "plots.energy_spectra_plot(E, [('limit (lambda_m^2 E_m)', lam**2 * E)], 8, title='Hermite energy of the digit images');"),
        ("code", "x = hl.datasets.digits_images()[:400]\nsamples = {a: {g: np.asarray(hl.generation(hl.empirical(x), a, t0, g).sample(jax.random.fold_in(key, 100 + g), 300)) for g in (0, 10, 20)} for a in (0.1, 0.9)}\n"
                 "plots.pc_panels(samples, x);"),
    ],
    "06_learned_models": [
        ("md", "# Learned models against the closed form\nEach generation trains a score network (`hl.NeuralScore`: an MLP on "
               "`x` and sinusoidal features of `log t`, denoising score matching, AdamW, EMA) on `alpha n` fresh samples plus "
               "`(1-alpha) n` samples of the previous model, then samples with the reverse SDE. Does the trained model follow "
               "the predicted low-pass filter? Small sizes here (a few hundred training steps); "
               "`hermite-limit learned-images` runs the full digits job."),
        ("code", SETUP + "\nfrom hermite_limit.checks import run_learned, spectrum_figure, verdicts"),
        ("md", "## A 1-D mixture: the W2 ball\nThe observed sliced W2 to the closed-form generation stays below the bound "
               "`sum_j kappa^(i-j) delta_j` built from each generation's own error `delta_j`."),
        ("code", "data = hl.datasets.preset('bimodal-1d')\nalpha, t0 = 0.5, 0.1\n"
                 "res = hl.retrain(jax.random.key(0), data, alpha, t0, 3, 2000, learner=hl.NeuralScore(width=32, depth=2, steps=300),\n"
                 "                 n_steps=100, order=3, progress=False)\nr = res.records\n"
                 "for i in range(3):\n    print(f'generation {i + 1}: sliced W2 {r.sliced_w2[i]:.3f} <= bound {r.w2_bound[i]:.3f}; '\n"
                 "          f'a_1..3 = {np.round(r.hermite[i, 0, 1:], 3)} +- {np.round(r.hermite_se[i, 0, 1:], 3)}, exact {np.round(r.hermite_exact[i, 0, 1:], 3)}')"),
        ("code", "fig, ax = plt.subplots(figsize=(5, 3.2))\ng = np.arange(1, 4)\nax.plot(g, r.sliced_w2, 'o-', label='learned: W2 to p_i')\n"
                 "ax.plot(g, r.w2_bound, 's--', label='W2-ball bound')\nax.plot(g, r.sliced_w2_floor, ':', label='sampling-noise floor')\n"
                 "ax.set_xlabel('generation'); ax.set_ylabel('sliced W2'); ax.legend()\nplt.close(fig)\nfig"),
        ("md", "## Digits: the learned spectrum against the filter\n300 of the 8x8 digits (64-D, in [-1, 1]), two "
               "generations. The energy per total Hermite order of each generation's samples (unbiased, with standard errors) "
               "against `f_m(i)^2 E_m(p_data)`, the closed form for the empirical law."),
        ("code", "x = hl.datasets.digits_images()[:300]\ngrids = {'data': x[:8]}\n"
                 "run = run_learned(jax.random.key(1), hl.empirical(x), 0.5, 0.1, 2, 300, hl.NeuralScore(width=64, depth=2, steps=200),\n"
                 "                  n_steps=50, order=4, progress=False, callback=lambda i, p: grids.__setitem__(f'generation {i + 1}', np.asarray(p[:8])))\n"
                 "fig = plots.image_grid(grids, (8, 8))\nplt.close(fig)\nfig"),
        ("code", "v = verdicts(run.energy, run.energy_se, run.energy_exact)\n"
                 "print('follows the filter (within 4 se) at orders', v['follows'], '; above', v['above'], '; below', v['below'], '; mixed', v['mixed'])\n"
                 "fig = spectrum_figure(run.energy, run.energy_se, run.energy_exact, run.energy_limit, run.energy_data)\nplt.close(fig)\nfig"),
    ],
}


def build(name, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src) for kind, src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main(names=None):
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = build(name, cells)
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE.parent)}}).execute()
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
