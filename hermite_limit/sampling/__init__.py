"""Exact recursion through real reverse-diffusion samplers.

Modules: ``_score`` (exact scores of ``P_t q`` for mixtures), ``_grid`` (time grids), ``_solvers``
(EM, exponential integrator, probability-flow ODE; scan and diffrax loops), ``_reverse``
(``reverse_sample``), ``_stats`` (sample statistics with standard errors, exact 1-D W2 to a mixture),
``_learners`` (the learner protocol and the learners: exact, particles, refit, KDE, neural),
``_retrain`` (the retraining loop), ``_errors`` (score-error injection, path energies, observability),
``_gaussian`` (exact Gaussian outputs under affine score errors), ``_fokker_planck`` (the output density in
d = 1, 2 by a Fokker-Planck solve). The noise (Box-Muller normals) is ``hermite_limit._noise``.
"""

from ._grid import time_grid as time_grid
from ._reverse import ReverseSample as ReverseSample
from ._reverse import reverse_sample as reverse_sample
from ._score import MixtureScore as MixtureScore
from ._score import mixture_score as mixture_score
from ._refit import fit_gmm as fit_gmm
from ._learners import Learner as Learner
from ._learners import TrainingSet as TrainingSet
from ._learners import LearnedScore as LearnedScore
from ._learners import ExactScore as ExactScore
from ._learners import ParticleScore as ParticleScore
from ._learners import RefitScore as RefitScore
from ._learners import KDEScore as KDEScore
from ._learners import NeuralScore as NeuralScore
from ._learners import NeuralScoreFunction as NeuralScoreFunction
from ._retrain import RetrainRecords as RetrainRecords
from ._retrain import RetrainResult as RetrainResult
from ._retrain import retrain as retrain
from ._errors import MCEstimate as MCEstimate
from ._errors import Observability as Observability
from ._errors import ScoreError as ScoreError
from ._errors import observability as observability
from ._errors import path_energy as path_energy
from ._errors import score_error as score_error
from ._gaussian import GaussianOutput as GaussianOutput
from ._gaussian import gaussian_output_moments as gaussian_output_moments
from ._fokker_planck import FokkerPlanckOutput as FokkerPlanckOutput
from ._fokker_planck import fokker_planck_output as fokker_planck_output
