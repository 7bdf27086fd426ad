r"""Univariate distributions that ``torch.distributions`` lacks, each with a closed-form CRPS.

Every class is a :class:`torch.distributions.Distribution` (``log_prob``, ``cdf``, ``icdf`` where it exists,
``sample``/``rsample``, ``support``, ``arg_constraints``, broadcasting, ``expand``), registered with
:func:`scoringrules_torch.functional.crps` and usable with :func:`scoringrules_torch.functional.log_score`.
Point masses (censoring at bounds) are parameters of the distribution, not flags of a score. The families are
those of scoringrules' closed-form scores; the docs page *Distributions* maps each to its scoringrules name.
"""

from .censored import (
    CensoredLogistic,
    CensoredNormal,
    CensoredShiftedGamma,
    CensoredStudentT,
    GeneralizedTruncatedCensoredLogistic,
    GeneralizedTruncatedCensoredNormal,
    GeneralizedTruncatedCensoredStudentT,
    TruncatedLogistic,
    TruncatedNormal,
    TruncatedStudentT,
    UniformWithMasses,
)
from .discrete import Hypergeometric
from .extreme import ExponentialWithMass, GeneralizedExtremeValue, GeneralizedParetoWithMass
from .logistic import Logistic, LogLaplace, LogLogistic
from .twopiece import TwoPieceExponential, TwoPieceNormal

__all__ = [
    "CensoredLogistic",
    "CensoredNormal",
    "CensoredShiftedGamma",
    "CensoredStudentT",
    "ExponentialWithMass",
    "GeneralizedExtremeValue",
    "GeneralizedParetoWithMass",
    "GeneralizedTruncatedCensoredLogistic",
    "GeneralizedTruncatedCensoredNormal",
    "GeneralizedTruncatedCensoredStudentT",
    "Hypergeometric",
    "LogLaplace",
    "LogLogistic",
    "Logistic",
    "TruncatedLogistic",
    "TruncatedNormal",
    "TruncatedStudentT",
    "TwoPieceExponential",
    "TwoPieceNormal",
    "UniformWithMasses",
]
