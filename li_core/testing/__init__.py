"""Tools to trust a backend: the conformance suite, the tolerances of the
contract (docs/contract.md), section 4 and cross-backend equivalence.

- ``li check NAME`` / ``pytest --pyargs li_core.testing.conformance --li-backend NAME``
  runs the conformance suite (:mod:`li_core.testing.conformance`);
- :func:`run_conformance` does the same from Python, also for backend objects
  that are not registered;
- :func:`compare` / ``li compare`` runs the same inputs (random, slow
  neurons, and the long runs of slow neurons) through every backend and
  tabulates the errors against the float64 reference;
- :mod:`li_core.testing.long_runs` gives the float64 numbers and gradients
  of runs too long for the reference (10^5 and 10^6 steps).
"""

from .cases import Case, random_case
from .tolerances import RTOL, assert_matches, error_ratio

__all__ = ["RTOL", "Case", "assert_matches", "error_ratio", "random_case"]
