"""Recovery-distribution worksheet functions: NPL_BETA_PARAMS, _FIT, _INV, _DIST, _DRAWS."""

from __future__ import annotations

from npl_xl.model import beta
from npl_xl.sheet.registry import Arg, worksheet_function

_MEAN = Arg("mean", "number", doc="Mean recovery rate, decimal strictly between 0 and 1 (0.35 = 35%)")
_SD = Arg("sd", "number", doc="Standard deviation of the recovery rate, decimal; sd^2 < mean(1-mean)")


@worksheet_function("NPL_BETA_PARAMS", _MEAN, _SD, shape="1x2: alpha, beta",
                    zh="按均值和标准差（矩估计）求回收率Beta分布的形状参数alpha、beta")
def beta_params(mean, sd):
    """Beta shape parameters alpha and beta for a recovery rate with this mean and sd (method of moments)."""
    return [list(beta.beta_params(mean, sd))]


@worksheet_function(
    "NPL_BETA_FIT",
    Arg("data", "vector", blanks="skip", doc="Observed recovery rates, decimals in [0, 1]; blanks ignored"),
    Arg("method", "text", default="MLE", doc='"MLE" (default, maximum likelihood) or "MOM" (moments)'),
    Arg("tol", "number", default=1e-6, doc="Values <= tol count as zero recoveries, >= 1-tol as full; default 1e-6"),
    shape="1x6: alpha, beta, p_zero, p_one, loglik, n",
    zh="用历史回收率拟合Beta分布（零回收与全额回收单列）：alpha、beta、p_zero、p_one、对数似然、样本数",
)
def beta_fit(data, method, tol):
    """Fit a Beta to recovery rates, with zero and full recoveries split off: alpha, beta, p_zero, p_one, loglik, n."""
    return [beta.fit_beta(data, method, tol).as_row()]


@worksheet_function(
    "NPL_BETA_INV",
    Arg("p", "number", doc="Probability, decimal in [0, 1]"),
    _MEAN, _SD,
    zh="给定均值和标准差的Beta回收率分布的分位数",
)
def beta_inv(p, mean, sd):
    """Quantile of the Beta recovery distribution with this mean and sd."""
    return beta.beta_inv(p, mean, sd)


@worksheet_function(
    "NPL_BETA_DIST",
    Arg("x", "number", doc="Recovery rate, decimal in [0, 1]"),
    _MEAN, _SD,
    Arg("cumulative", "bool", default=True, doc="TRUE (default): P(X <= x); FALSE: density at x"),
    zh="给定均值和标准差的Beta分布的累积分布函数（默认）或密度，同BETA.DIST",
)
def beta_dist(x, mean, sd, cumulative):
    """Cumulative distribution (default) or density of the Beta with this mean and sd, like BETA.DIST."""
    return beta.beta_dist(x, mean, sd, cumulative)


@worksheet_function(
    "NPL_BETA_DRAWS",
    _MEAN, _SD,
    Arg("n", "integer", doc="Number of draws, 1 to 1,048,576"),
    Arg("seed", "integer", default=0, doc="Random seed, whole number >= 0; blank = 0 (never random per recalc)"),
    Arg("cap", "bool", default=False, doc="TRUE returns min(draw, mean): removes upside"),
    shape="nx1",
    zh="n个可复现的Beta回收率随机数（同一种子在任何机器上结果相同）",
)
def beta_draws(mean, sd, n, seed, cap):
    """n reproducible Beta recovery draws with this mean and sd (same seed, same numbers everywhere)."""
    return beta.beta_draws(mean, sd, n, seed, cap).reshape(-1, 1)
