"""Diagnose a retraining pipeline from its generations' samples.

Modules: ``_stats`` (sample Hermite coefficient vectors, covariances, bootstrap replicates), ``_model``
(the linear recursion of the coefficients and its errors-in-variables fit), ``_conventions`` (t0 as a
VP time or DDPM step), ``_diagnosis`` (:func:`diagnose` and :class:`Diagnosis`).
"""

from ._diagnosis import Diagnosis as Diagnosis
from ._diagnosis import diagnose as diagnose
from ._forecast import DiagnosisForecast as DiagnosisForecast
from ._forecast import InverseFilter as InverseFilter
from ._forecast import invert_filter as invert_filter
from ._schedule_design import DesignedSchedule as DesignedSchedule
from ._schedule_design import design_schedule as design_schedule
