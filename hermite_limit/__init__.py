"""hermite_limit: where recursive retraining of diffusion models ends up, exactly.

Retraining on fresh data (fraction ``alpha``) and on the model's own samples, with the reverse
diffusion stopped at Ornstein-Uhlenbeck time ``t0``, converges to
``p_inf = sum_{k>=1} alpha (1-alpha)^{k-1} P_{k t0} p_data``, whose Hermite coefficients are the
data's times ``lambda_m = alpha rho^m / (1 - (1-alpha) rho^m)``, ``rho = e^{-t0}``.

The conventions (forward SDE ``dX = -X dt + sqrt(2) dW``, ``h_n = He_n / sqrt(n!)``, time
converters) and the public API contract are in the repository's docs/conventions.md, "Public API
contract" and "report.json schema". Everything computes in float64 within a
scoped x64 context; the caller's global state (JAX configuration, matplotlib backend, warning
filters) is never changed. Bad input raises ``ValueError`` or ``TypeError`` naming the argument.

Examples
--------
>>> import hermite_limit as hl
>>> data = hl.GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])
>>> lim = hl.limit_distribution(data, alpha=0.5, t0=0.1, tol=1e-12)
>>> lim.tail_mass <= 1e-12
True
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public names are the imports in the TYPE_CHECKING block below (one per line, the single list of the
# API). They are imported on first use (PEP 562), so `import hermite_limit` and the command line start
# without loading JAX; `from hermite_limit import *` and `dir()` see every name.
if TYPE_CHECKING:
    from ._limit import LimitDistribution as LimitDistribution
    from ._limit import generation as generation
    from ._limit import generations as generations
    from ._limit import limit_distribution as limit_distribution
    from ._mixture import GaussianMixture as GaussianMixture
    from ._mixture import empirical as empirical
    from ._mixture import mix as mix
    from ._mixture import standard_normal as standard_normal
    from ._ou import ou_push as ou_push
    from ._pushed import PushedCopies as PushedCopies
    from ._time import Schedule as Schedule
    from ._time import constant as constant
    from ._time import ddpm_linear_betas as ddpm_linear_betas
    from ._time import ddpm_to_ou_time as ddpm_to_ou_time
    from ._time import geometric as geometric
    from ._time import harmonic as harmonic
    from ._time import noise_variance as noise_variance
    from ._time import power_law as power_law
    from ._time import rho_from_time as rho_from_time
    from ._time import schedule_times as schedule_times
    from ._time import time_from_noise_variance as time_from_noise_variance
    from ._time import time_from_rho as time_from_rho
    from ._time import vp_to_ou_time as vp_to_ou_time
    from .hermite import EnergySpectrum as EnergySpectrum
    from .hermite import HermiteCoefficients as HermiteCoefficients
    from .hermite import attenuation as attenuation
    from .hermite import contraction_rate as contraction_rate
    from .hermite import energy_spectrum as energy_spectrum
    from .hermite import gauss_hermite as gauss_hermite
    from .hermite import graded_indices as graded_indices
    from .hermite import half_power_order as half_power_order
    from .hermite import hermite_coefficients as hermite_coefficients
    from .hermite import hermite_polynomials as hermite_polynomials
    from .hermite import hermite_products as hermite_products
    from .hermite import mode_half_life as mode_half_life
    from .hermite import ou_push_coefficients as ou_push_coefficients
    from .hermite import schedule_attenuation as schedule_attenuation

    from ._diagnose import Diagnosis as Diagnosis
    from ._diagnose import DesignedSchedule as DesignedSchedule
    from ._diagnose import diagnose as diagnose
    from ._diagnose import design_schedule as design_schedule
    from ._diagnose import invert_filter as invert_filter
    from .divergences import Estimate as Estimate
    from .divergences import chi2_divergence as chi2_divergence
    from .divergences import gaussian_chi2 as gaussian_chi2
    from .divergences import gaussian_kl as gaussian_kl
    from .divergences import gaussian_w2 as gaussian_w2
    from .divergences import kl_divergence as kl_divergence
    from .divergences import tv_distance as tv_distance
    from .divergences import w2_1d as w2_1d
    from . import datasets as datasets

    from .sampling import ExactScore as ExactScore
    from .sampling import KDEScore as KDEScore
    from .sampling import LearnedScore as LearnedScore
    from .sampling import Learner as Learner
    from .sampling import NeuralScore as NeuralScore
    from .sampling import NeuralScoreFunction as NeuralScoreFunction
    from .sampling import ParticleScore as ParticleScore
    from .sampling import RefitScore as RefitScore
    from .sampling import TrainingSet as TrainingSet
    from .sampling import FokkerPlanckOutput as FokkerPlanckOutput
    from .sampling import GaussianOutput as GaussianOutput
    from .sampling import MixtureScore as MixtureScore
    from .sampling import Observability as Observability
    from .sampling import RetrainRecords as RetrainRecords
    from .sampling import RetrainResult as RetrainResult
    from .sampling import ReverseSample as ReverseSample
    from .sampling import ScoreError as ScoreError
    from .sampling import fokker_planck_output as fokker_planck_output
    from .sampling import gaussian_output_moments as gaussian_output_moments
    from .sampling import mixture_score as mixture_score
    from .sampling import observability as observability
    from .sampling import path_energy as path_energy
    from .sampling import retrain as retrain
    from .sampling import reverse_sample as reverse_sample
    from .sampling import score_error as score_error


def _exports() -> dict[str, tuple[str, str]]:
    """Public name -> (module relative to this package, attribute or "" for a module), read from the
    TYPE_CHECKING block of this file."""
    import ast

    source = __loader__.get_source(__name__)  # noqa: F821 (set by the import system)
    table = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                if not isinstance(imp, ast.ImportFrom):
                    raise ImportError("the TYPE_CHECKING block of hermite_limit/__init__.py holds only 'from ... import x as x' lines")
                for alias in imp.names:
                    if imp.module is None:  # from . import datasets as datasets
                        table[alias.asname or alias.name] = ("." + alias.name, "")
                    else:
                        table[alias.asname or alias.name] = ("." * imp.level + imp.module, alias.name)
    return table


_EXPORTS = _exports()
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    import importlib.util

    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        mod = importlib.import_module(module, __name__)
        value = getattr(mod, attr) if attr else mod
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # a submodule: hl.plots, hl.checks, ...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
