"""Diagnose a retraining pipeline from its generations' samples.

Modules: ``_stats`` (sample Hermite coefficient vectors, covariances, bootstrap replicates), ``_model``
(the linear recursion of the coefficients and its errors-in-variables fit), ``_conventions`` (t0 as a
VP time or DDPM step), ``_diagnosis`` (:func:`diagnose` and :class:`Diagnosis`).
"""

from ._diagnosis import Diagnosis as Diagnosis
from ._diagnosis import diagnose as diagnose
