"""The loan pool as the engine sees it: per-loan arrays, checked, with Beta parameters.

A :class:`Pool` is built from plain arrays (or from the valued tape's DataFrame with
:func:`pool_from_frame`). Each loan i has

- ``claim_i``: outstanding claim, currency, >= 0;
- ``expected_recovery_i``: expected (undiscounted, net of disposal costs) recovery, currency,
  0 <= expected_recovery_i <= claim_i;
- ``expected_months_i``: expected months from closing to the recovery, >= 0;
- ``recovery_sd_i``: standard deviation of the recovery *rate* (recovery / claim), decimal;
- ``region_id_i``: small whole number >= 0 naming the loan's region (for the regional factor);
- ``principal_i`` (optional): outstanding principal, currency, >= 0, NaN where the tape gives
  none (Settings tax_base = interest taxes only the recoveries above it; price_to_principal).

The recovery rate is Beta with mean mu_i = expected_recovery_i / claim_i and sd recovery_sd_i
(method of moments, :func:`npl_xl.model.beta.beta_params`). A loan with mu 0, mu 1 or sd 0 is
deterministic (its rate is mu on every path). An sd too large for a Beta with that mean is
capped at sd_cap_factor x sqrt(mu (1 - mu)), whatever its source: the cap applies to a tape's
recovery_sd override too. sd_cap_factor is the Assumptions' Parameters value (packaged
default 0.9; a Beta needs sd < sqrt(mu (1 - mu)), and the factor keeps the fitted shape away
from the U-shaped limit); the valued tape carries the factor it was valued with
(``frame.attrs["sd_cap_factor"]``), so a workbook's override reaches the engine. (The
valuation, :mod:`npl_xl.model.loans`, keeps its own sds under the cap and rejects an override
at or above sqrt(mu (1 - mu)), which no Beta has; an override between the two is capped here
without an error.) ``n_sd_capped`` counts the loans capped; the Results sheet's run block
shows it as "loans with sd capped".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npl_xl.checks import Interval, check_each, check_number
from npl_xl.errors import DomainError, InputTypeError

__all__ = ["Pool", "pool_from_frame", "pool_from_tape", "as_pool", "default_sd_cap_factor"]


_NON_NEGATIVE = Interval(0.0)


def default_sd_cap_factor() -> float:
    """The packaged Assumptions' sd_cap_factor (decimal share of sqrt(mu (1 - mu))): the one
    source of the cap's default."""
    from npl_xl.inputs.assumptions import resolve

    return resolve(None).sd_cap_factor


@dataclass(frozen=True)
class Pool:
    """Per-loan arrays (shape (n_loans,)); build with :meth:`from_arrays`."""

    claim: np.ndarray
    expected_recovery: np.ndarray
    expected_months: np.ndarray
    recovery_sd: np.ndarray
    region_id: np.ndarray
    mean: np.ndarray        # mu_i, decimal
    alpha: np.ndarray       # 0 for a deterministic loan
    beta: np.ndarray
    n_sd_capped: int
    sd_cap_factor: float    # the cap applied, decimal share of sqrt(mu (1 - mu))
    principal: np.ndarray | None = None   # currency, NaN where not given; None: no column

    @property
    def has_principal(self) -> bool:
        """Whether every loan has a principal (the tape's principal column, 未偿本金)."""
        return self.principal is not None and bool(np.all(np.isfinite(self.principal)))

    @property
    def total_principal(self) -> float:
        """Sum of the loans' principal (currency); NaN unless :attr:`has_principal`."""
        return float(self.principal.sum()) if self.has_principal else float("nan")

    def principal_for_tax(self) -> np.ndarray:
        """The principal per loan (currency) for Settings tax_base = interest.

        Raises DomainError naming tax_base when the tape has no principal column (or a loan's
        principal is blank): only the recoveries above principal are taxed, so it is needed."""
        if self.principal is None or not np.any(np.isfinite(self.principal)):
            raise DomainError("interest taxes each loan's recoveries above its principal, but "
                              "the tape has no principal column (未偿本金); add it or set "
                              "tax_base to collections", argument="tax_base")
        blank = np.flatnonzero(~np.isfinite(self.principal))
        if blank.size:
            raise DomainError(f"interest needs every loan's principal, but loan {blank[0] + 1} "
                              f"has none (principal column, 未偿本金; {blank.size} loans in all)",
                              argument="tax_base")
        return self.principal

    @property
    def n_loans(self) -> int:
        return int(self.claim.shape[0])

    @property
    def n_regions(self) -> int:
        return int(self.region_id.max()) + 1 if self.n_loans else 1

    @property
    def total_claim(self) -> float:
        return float(self.claim.sum())

    @classmethod
    def from_arrays(cls, claim, expected_recovery, expected_months, recovery_sd,
                    region_id=None, sd_cap_factor: float | None = None,
                    principal=None) -> "Pool":
        """Check the arrays and derive the Beta parameters.

        sd_cap_factor: recovery sds are capped at sd_cap_factor x sqrt(mu (1 - mu)), a
        decimal in (0, 1]; None = the packaged Assumptions' value (0.9). principal: each
        loan's outstanding principal (currency >= 0, NaN = not given), or None.

        Raises DomainError (``#NUM!``) naming the array and the first bad loan (1-based) for
        a negative claim, a recovery outside [0, claim], negative months or sd, a negative
        region; InputTypeError for arrays of different lengths or non-finite values.
        """
        cap = default_sd_cap_factor() if sd_cap_factor is None else float(sd_cap_factor)
        check_number(cap, Interval(0.0, 1.0, low_open=True), "sd_cap_factor")
        claim = _array(claim, "claim")
        n = claim.shape[0]
        if n == 0:
            raise InputTypeError("the pool has no loans", argument="tape")
        recovery = _array(expected_recovery, "expected_recovery", n)
        months = _array(expected_months, "expected_months", n)
        sd = _array(recovery_sd, "recovery_sd", n)
        region = np.zeros(n, dtype=np.int64) if region_id is None else _array(region_id, "region_id", n)
        for values, name in ((claim, "claim"), (recovery, "expected_recovery"),
                             (months, "expected_months"), (sd, "recovery_sd")):
            check_each(values, _NON_NEGATIVE, name, noun="loan")
        _check(recovery > claim * (1 + 1e-12), recovery, "expected_recovery",
               "exceeds the claim; the recovery is capped at the claim")
        _check((region < 0) | (region != np.floor(region)) | (region > 100_000), region,
               "region_id", "must be a whole number from 0 to 100000")
        region = region.astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(claim > 0, np.minimum(recovery / np.where(claim > 0, claim, 1.0), 1.0), 0.0)
        var_limit = mean * (1.0 - mean)
        random = (sd > 0) & (var_limit > 0)
        capped_sd = np.minimum(sd, cap * np.sqrt(var_limit))
        n_capped = int(np.count_nonzero(random & (sd > capped_sd)))
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(random, var_limit / np.where(random, capped_sd, 1.0) ** 2 - 1.0, 0.0)
        alpha = np.where(random, mean * k, 0.0)
        beta = np.where(random, (1.0 - mean) * k, 0.0)
        if principal is not None:
            principal = np.ascontiguousarray(principal, dtype=np.float64).ravel()
            if principal.shape[0] != n:
                raise InputTypeError(f"has {principal.shape[0]} values for {n} loans",
                                     argument="principal")
            _check(principal < 0, principal, "principal", "must be >= 0")
            _check(np.isinf(principal), principal, "principal", "must be finite")
        return cls(claim, recovery, months, sd, region, mean, alpha, beta, n_capped, cap,
                   principal)


def _array(values, name: str, n: int | None = None) -> np.ndarray:
    try:
        array = np.ascontiguousarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputTypeError("holds a value that is not a number", argument=name) from None
    if n is not None and array.shape[0] != n:
        raise InputTypeError(f"has {array.shape[0]} values for {n} loans", argument=name)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InputTypeError(f"loan {bad[0] + 1} has no finite value", argument=name)
    return array


def _check(mask: np.ndarray, values: np.ndarray, name: str, message: str) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        raise DomainError(f"loan {bad[0] + 1}: {message}, got {values[bad[0]]:g}"
                          + (f" ({bad.size} loans in all)" if bad.size > 1 else ""), argument=name)


def pool_from_frame(frame, sd_cap_factor: float | None = None) -> Pool:
    """A :class:`Pool` from the valued tape (``npl_xl.model.loans.value_tape``): columns claim,
    expected_recovery, expected_months, recovery_sd and, if present, region_id.

    sd_cap_factor: None = the factor the tape was valued with (``frame.attrs``, set by
    ``value_tape``), else the packaged default.

    Examples
    --------
    >>> from npl_xl import pool_from_frame, read_tape, value_tape
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> pool = pool_from_frame(value_tape(read_tape(tape)))
    >>> pool.expected_recovery.tolist()   # currency
    [630724.32, 100000.0]
    """
    missing = [c for c in ("claim", "expected_recovery", "expected_months", "recovery_sd")
               if c not in frame.columns]
    if missing:
        raise InputTypeError(f"the valued tape lacks column(s) {', '.join(missing)}", argument="tape")
    region = frame["region_id"].to_numpy(dtype=float) if "region_id" in frame.columns else None
    if sd_cap_factor is None:
        sd_cap_factor = getattr(frame, "attrs", {}).get("sd_cap_factor")
    principal = (frame["principal"].to_numpy(dtype=float, na_value=np.nan)
                 if "principal" in frame.columns else None)
    return Pool.from_arrays(frame["claim"].to_numpy(dtype=float),
                            frame["expected_recovery"].to_numpy(dtype=float),
                            frame["expected_months"].to_numpy(dtype=float),
                            frame["recovery_sd"].to_numpy(dtype=float), region, sd_cap_factor,
                            principal)


def pool_from_tape(tape, assumptions=None, collateral=None, guarantees=None, settings=None) -> Pool:
    """The engine's pool of a loan tape: read (:func:`npl_xl.inputs.tape.read_tape`), valued
    loan by loan (:func:`npl_xl.model.loans.value_tape`) and checked, with the assumptions'
    sd_cap_factor. The one helper of every function that values a tape.

    collateral, guarantees : the Collateral and Guarantees tables (ranges with a header row,
        or frames already read), valued as shared collateral and guarantees
        (:mod:`npl_xl.model.shared`); None = the Tape's own collateral. settings : the
        Settings range or DealSettings (money_unit, appraisal ageing); None = defaults.

    tape : a list of rows with a header (a worksheet range), a DataFrame with the tape's
        columns, or a tape already read; assumptions : an
        :class:`~npl_xl.inputs.assumptions.Assumptions`, a worksheet block of assumption
        tables, or None for the packaged defaults.

    Examples
    --------
    >>> from npl_xl import pool_from_tape
    >>> tape = [["loan_id", "claim", "province", "collateral_type", "collateral_value",
    ...          "stage", "guarantor_recovery"],
    ...         ["L1", 1_000_000, "浙江", "住宅", 900_000, "auction_1", None],
    ...         ["L2", 400_000, "Jiangsu", "none", None, "judgment", 100_000]]
    >>> pool = pool_from_tape(tape)
    >>> pool.n_loans, pool.total_claim, pool.sd_cap_factor
    (2, 1400000.0, 0.9)
    >>> pool.mean.round(4).tolist()   # expected recovery rates mu_i, decimal
    [0.6307, 0.25]
    """
    from npl_xl.inputs.assumptions import Assumptions, from_argument, resolve
    from npl_xl.inputs.tape import read_tables
    from npl_xl.model.loans import value_tape

    if not isinstance(assumptions, Assumptions):
        assumptions = from_argument(assumptions)
    chosen = resolve(assumptions)
    frames = read_tables(tape, collateral, guarantees, settings)
    return pool_from_frame(value_tape(frames[0], chosen, frames[1], frames[2]), chosen.sd_cap_factor)


def as_pool(pool) -> Pool:
    """``pool`` as a :class:`Pool`: a Pool unchanged, the valued tape's DataFrame through
    :func:`pool_from_frame`; anything else is a TypeError."""
    if isinstance(pool, Pool):
        return pool
    if hasattr(pool, "columns"):
        return pool_from_frame(pool)
    raise TypeError("pool must be an npl_xl.engine.Pool or the valued tape DataFrame")
