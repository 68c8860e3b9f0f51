"""hermite_limit: where recursive retraining of diffusion models ends up, exactly.

Public API (see DESIGN.md section 3). Everything computes in float64 within a scoped x64
context; the caller's global JAX configuration is never changed.
"""

from ._limit import LimitDistribution as LimitDistribution
from ._limit import generation as generation
from ._limit import generations as generations
from ._limit import limit_distribution as limit_distribution
from ._mixture import GaussianMixture as GaussianMixture
from ._mixture import empirical as empirical
from ._mixture import mix as mix
from ._mixture import standard_normal as standard_normal
from ._ou import ou_push as ou_push
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

from .divergences import Estimate as Estimate
from .divergences import chi2_divergence as chi2_divergence
from .divergences import gaussian_chi2 as gaussian_chi2
from .divergences import gaussian_kl as gaussian_kl
from .divergences import gaussian_w2 as gaussian_w2
from .divergences import kl_divergence as kl_divergence
from .divergences import tv_distance as tv_distance
from .divergences import w2_1d as w2_1d
from . import datasets as datasets
from .diagnose import Diagnosis as Diagnosis
from .diagnose import DesignedSchedule as DesignedSchedule
from .diagnose import diagnose as diagnose
from .diagnose import design_schedule as design_schedule
from .diagnose import invert_filter as invert_filter

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

__version__ = "0.1.0"


def __getattr__(name):
    # Submodules that pull in matplotlib are imported on first use, not with the package.
    if name in ("plots", "checks", "trajectory"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
