"""The Hermite spectral engine: polynomials, quadrature, coefficients, spectra, attenuation.

Modules: ``_indices`` (graded multi-indices, size guard), ``_polynomials`` (h_n, Gauss-Hermite),
``_gaussian`` (exact mixture coefficients), ``_quadrature`` and ``_samples`` (estimates with errors),
``_coefficients`` (the entry point and result type), ``_spectrum`` (per-order energies in high
dimension), ``_attenuation`` (the retraining filter and the OU action on coefficients).
"""

from ._attenuation import attenuation as attenuation
from ._attenuation import contraction_rate as contraction_rate
from ._attenuation import half_power_order as half_power_order
from ._attenuation import mode_half_life as mode_half_life
from ._attenuation import ou_push_coefficients as ou_push_coefficients
from ._attenuation import schedule_attenuation as schedule_attenuation
from ._coefficients import HermiteCoefficients as HermiteCoefficients
from ._coefficients import hermite_coefficients as hermite_coefficients
from ._indices import graded_indices as graded_indices
from ._polynomials import gauss_hermite as gauss_hermite
from ._polynomials import hermite_polynomials as hermite_polynomials
from ._polynomials import hermite_products as hermite_products
from ._spectrum import EnergySpectrum as EnergySpectrum
from ._spectrum import energy_spectrum as energy_spectrum
