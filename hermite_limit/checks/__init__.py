"""Numerical checks of every claim: each returns a :class:`CheckRecord`."""

from ._record import CheckRecord as CheckRecord
from ._recursion import check_fixed_point as check_fixed_point
from ._recursion import check_init_independence as check_init_independence
from ._recursion import check_no_fresh_data as check_no_fresh_data
from ._recursion import check_tv_rate as check_tv_rate
from ._recursion import check_w2_rate as check_w2_rate
from ._report import write_report as write_report
from ._verify import VerifyConfig as VerifyConfig
from ._verify import run_checks as run_checks
