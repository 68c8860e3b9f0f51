"""Numerical checks of every claim: each returns a :class:`CheckRecord`."""

from ._learned import check_learned_attenuation as check_learned_attenuation
from ._learned import check_learned_drift_order as check_learned_drift_order
from ._learned import check_learned_family as check_learned_family
from ._learned import check_learned_w2_ball as check_learned_w2_ball
from ._propagation import check_discounted_accumulation as check_discounted_accumulation
from ._propagation import check_girsanov_kl as check_girsanov_kl
from ._propagation import check_seed_chi2_bounds as check_seed_chi2_bounds
from ._propagation import check_w2_ball as check_w2_ball
from ._propagation import seed_experiment_panels as seed_experiment_panels
from ._record import CheckRecord as CheckRecord
from ._recursion import check_fixed_point as check_fixed_point
from ._recursion import check_init_independence as check_init_independence
from ._recursion import check_no_fresh_data as check_no_fresh_data
from ._recursion import check_tv_rate as check_tv_rate
from ._recursion import check_w2_rate as check_w2_rate
from ._report import write_report as write_report
from ._spectral import check_annealed_schedules as check_annealed_schedules
from ._spectral import check_attenuation as check_attenuation
from ._spectral import check_mode_rates as check_mode_rates
from ._verify import VerifyConfig as VerifyConfig
from ._verify import run_checks as run_checks
from ._images import learned_images as learned_images
from ._images import run_learned as run_learned
from ._images import spectrum_figure as spectrum_figure
from ._images import verdicts as verdicts
