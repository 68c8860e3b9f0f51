"""High-precision references (mpmath, never jitted) used by tests and benchmarks."""

from ._mpmath import coefficients_mp as coefficients_mp
from ._mpmath import coefficients_1d_mp as coefficients_1d_mp
from ._mpmath import hermite_polynomials_mp as hermite_polynomials_mp
