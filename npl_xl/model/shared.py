"""Shared collateral and guarantees: many loans, many properties, many guarantors.

The Collateral table links each item (a property, a pledge) to one or more loans with a
lien rank; the Guarantees table links each guarantor to one or more loans with the
guarantor's expected payment. Valuation, per the contract's "Loan tapes as they come":

1. Each item's net proceeds (currency), as for a loan's own collateral
   (:func:`npl_xl.model.loans.case_arrays`): the expected judicial-auction proceeds from
   its stage, less disposal costs, its prior claims (higher-ranking claims of other
   creditors, paid first) and its defects' deductions.
2. The proceeds go to the item's loans by lien rank, lowest rank number first: Civil Code
   of the PRC (民法典) art. 414, registered mortgages on one property rank by registration
   and those of equal rank share pro rata to claim. Within a rank, pro rata to claim; no
   loan draws more than its claim (the scope of the security, art. 389, is the secured
   claim); what a loan cannot absorb goes to the rank's other loans and then to the next
   rank; what no loan absorbs is surplus (returned to the owner, not recovered). A loan
   secured by several items draws from each, its claim the cap on the total; when the
   offers of several items exceed what it can absorb, each offer is cut in proportion.
   Each draw is then multiplied by the item's defect value factor (the same order as a
   loan's own collateral: min(claim, proceeds) x factor).
3. The debtor's collateral first, then guarantees (art. 392): a guarantor's expected
   payment is shared among its loans pro rata to the claim each still has unrecovered
   after borrower, collateral and other recoveries (co-guarantors, art. 699: the creditor
   may claim from any; here each guarantor pays pro rata and none pays a loan beyond what
   is unrecovered, the excess passing to its other loans). A general guarantee's prior
   defence (art. 686-687) is not modelled separately: the expected_recovery given is
   what the guarantor is expected to pay.
4. A loan's recovery = min(claim, borrower + tape guarantor + collateral + guarantees +
   other); so a borrower's total recovery over its loans never exceeds its total claim
   (checked, and enforced by scaling, in :func:`value_shared`).

Months and difficulty of a linked loan come from its main item (the one it draws most
from; the first linked item when it draws nothing): the item's province, type, stage and
defects set the judicial timeline, region and grade; the months are the draw-weighted mean
of its items' months. With one Collateral row per loan (the loan's own collateral) and
no Guarantees, the valuation equals the Tape-only valuation loan by loan.

The allocation (:func:`allocate`) is vectorised over links with numpy: each pass offers
every item's remainder to its unsaturated loans of the current rank at once, and a loan
offered more than it can absorb saturates, so each pass saturates at least one loan and
a pass with none saturated ends the rank (10,000 loans, 6,000 items: milliseconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npl_xl.errors import TableError
from npl_xl.inputs.assumptions import Assumptions, resolve
from npl_xl.inputs.tape import row_cell
from npl_xl.model.loans import case_arrays, combine_valuation

__all__ = ["allocate", "value_shared", "Links", "collateral_links", "guarantee_links"]

#: Item attributes that rows of one collateral_id must agree on.
_ITEM_COLUMNS = ("collateral_type", "province", "collateral_value", "prior_claims", "stage", "defects")


def allocate(amount: np.ndarray, link_item: np.ndarray, link_loan: np.ndarray,
             link_rank: np.ndarray, weight: np.ndarray, capacity: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Share each item's amount among its linked loans by rank, pro rata to weight within a
    rank, no loan above its capacity; what a loan cannot absorb passes on.

    Parameters
    ----------
    amount : (n_items,) currency to share, >= 0.
    link_item, link_loan : (n_links,) int indexes of each link's item and loan.
    link_rank : (n_links,) int, lower ranks served first.
    weight : (n_loans,) pro-rata weight of each loan (its claim, or its unrecovered claim).
    capacity : (n_loans,) the most a loan may draw in all (currency).

    Returns
    -------
    draw : (n_links,) currency each link draws; Σ over a loan's links <= its capacity.
    surplus : (n_items,) what no linked loan could absorb.
    """
    n_items, n_loans = amount.shape[0], capacity.shape[0]
    remaining = np.asarray(amount, dtype=float).copy()
    room = np.asarray(capacity, dtype=float).copy()
    draw = np.zeros(link_item.shape[0])
    link_weight = np.asarray(weight, dtype=float)[link_loan]
    scale = max(float(np.abs(capacity).max(initial=0.0)), float(np.abs(amount).max(initial=0.0)), 1.0)
    tol = 1e-12 * scale
    for rank in np.unique(link_rank):
        active = (link_rank == rank) & (room[link_loan] > tol)
        for _ in range(n_loans + 1):
            w = np.where(active, link_weight, 0.0)
            total_w = np.bincount(link_item, w, n_items)
            share = np.divide(w, total_w[link_item], out=np.zeros_like(w), where=total_w[link_item] > 0)
            offer = remaining[link_item] * share
            offered = np.bincount(link_loan, offer, n_loans)
            full = offered > room + tol
            cut = np.divide(room, offered, out=np.ones(n_loans), where=full)
            take = offer * np.where(full, cut, 1.0)[link_loan]
            draw += take
            remaining = np.maximum(remaining - np.bincount(link_item, take, n_items), 0.0)
            room = np.where(full, 0.0, np.maximum(room - np.bincount(link_loan, take, n_loans), 0.0))
            if not full.any():
                break
            active &= room[link_loan] > tol
            if not (active & (remaining[link_item] > tol)).any():
                break
    return draw, remaining


class Links:
    """Links of a Collateral or Guarantees table: item index, loan index and rank per link."""

    def __init__(self, item: np.ndarray, loan: np.ndarray, rank: np.ndarray, n_items: int):
        self.item, self.loan, self.rank, self.n_items = item, loan, rank, n_items


def _loan_index(tape: pd.DataFrame) -> dict[str, int]:
    return {str(i): k for k, i in enumerate(tape["loan_id"].to_numpy(dtype=object))}


def _links(tape: pd.DataFrame, table: pd.DataFrame, item_of_row: list[int], ranks, n_items: int,
           problems: list[str], argument: str) -> Links:
    """The links of a table whose row k belongs to item item_of_row[k] and names the loans of
    its loan_ids, each at the rank of ``ranks[k]`` (one per loan). Raises TableError with
    ``problems`` and every loan id not on the tape."""
    index = _loan_index(tape)
    link_item, link_loan, link_rank = [], [], []
    for k, loan_ids in enumerate(table["loan_ids"].to_numpy(dtype=object)):
        for loan_id, rank in zip(loan_ids, ranks[k]):
            loan = index.get(str(loan_id))
            if loan is None:
                problems.append(f"{row_cell(table, k)}: loan {loan_id!r} is not on the tape")
                continue
            link_item.append(item_of_row[k])
            link_loan.append(loan)
            link_rank.append(rank)
    if problems:
        raise TableError(problems, argument=argument)
    return Links(np.array(link_item, dtype=np.int64), np.array(link_loan, dtype=np.int64),
                 np.array(link_rank, dtype=np.int64), n_items)


def collateral_links(tape: pd.DataFrame, collateral: pd.DataFrame) -> tuple[pd.DataFrame, Links]:
    """(one row per item, merged over rows of the same collateral_id; its links).
    Raises TableError for a loan id not on the tape or rows of one item that disagree."""
    problems: list[str] = []
    values = {c: collateral[c].to_numpy(dtype=object) for c in _ITEM_COLUMNS}
    first_row: dict[str, int] = {}
    item_of: dict[str, int] = {}
    items, item_of_row = [], []
    for k, cid in enumerate(collateral["collateral_id"].astype(str).to_numpy(dtype=object)):
        if cid not in first_row:
            first_row[cid] = k
            item_of[cid] = len(items)
            items.append(k)
        else:
            f = first_row[cid]
            for column in _ITEM_COLUMNS:
                a, b = (_plain(values[column][r]) for r in (f, k))
                if not (a == b or (pd.isna(a) and pd.isna(b))):
                    problems.append(f"{row_cell(collateral, k)}: collateral {cid!r} has {column} "
                                    f"{b!r} here but {a!r} in its first row "
                                    f"({row_cell(collateral, f)}); the rows of one item must agree")
        item_of_row.append(item_of[cid])
    links = _links(tape, collateral, item_of_row, collateral["lien_rank"].to_numpy(dtype=object),
                   len(items), problems, "collateral")
    return collateral.iloc[items].reset_index(drop=True), links


def guarantee_links(tape: pd.DataFrame, guarantees: pd.DataFrame) -> Links:
    """Links of the Guarantees table (one item per row, rank 1). TableError for an unknown
    loan id."""
    ones = [(1,) * len(ids) for ids in guarantees["loan_ids"]]
    return _links(tape, guarantees, list(range(len(guarantees))), ones, len(guarantees), [],
                  "guarantees")


def value_shared(tape: pd.DataFrame, collateral: pd.DataFrame | None = None,
                 guarantees: pd.DataFrame | None = None,
                 assumptions: Assumptions | None = None) -> pd.DataFrame:
    """The valued tape (as :func:`npl_xl.model.loans.value_tape`) with shared collateral and
    guarantees (module docstring), plus the columns collateral_recovery and
    guarantee_recovery (currency). Loans not named in the Collateral table keep their Tape
    collateral; loans named there ignore their Tape collateral columns."""
    a = resolve(assumptions)
    n = len(tape)
    claim = tape["claim"].to_numpy(dtype=float)
    own = case_arrays(tape, a)
    cases = own
    collateral_part = np.where(own.secured, np.minimum(claim, own.gross) * own.factor, 0.0)
    lien = tape["lien_rank"].to_numpy(dtype=float) if "lien_rank" in tape.columns else np.ones(n)
    prior = tape["prior_claims"].to_numpy(dtype=float) if "prior_claims" in tape.columns else np.zeros(n)
    if collateral is not None and len(collateral):
        items, links = collateral_links(tape, collateral)
        item_cases = case_arrays(items, a)
        draw, _ = allocate(item_cases.gross, links.item, links.loan, links.rank, claim, claim)
        value = draw * item_cases.factor[links.item]
        linked = np.zeros(n, dtype=bool)
        linked[links.loan] = True
        shared_part = np.bincount(links.loan, value, n)
        # main item of each linked loan: the largest draw, ties to the first link
        order = np.lexsort((np.arange(len(value)), -value, links.loan))
        first_of_loan = order[np.r_[True, links.loan[order][1:] != links.loan[order][:-1]]]
        main = np.zeros(n, dtype=np.int64)
        main[links.loan[first_of_loan]] = first_of_loan
        main_item = links.item[main]
        take = np.where(linked, main_item, 0)
        chosen = item_cases.take(take)
        total = np.bincount(links.loan, value, n)
        weighted = np.bincount(links.loan, value * item_cases.months[links.item], n)
        count = np.bincount(links.loan, None, n)
        plain = np.bincount(links.loan, item_cases.months[links.item], n)
        months = np.where(total > 0, np.divide(weighted, total, out=np.zeros(n), where=total > 0),
                          np.divide(plain, count, out=np.zeros(n), where=count > 0))
        mixed = {}
        for name in own.__dataclass_fields__:
            mine, theirs = getattr(own, name), getattr(chosen, name)
            mixed[name] = np.where(linked[:, None] if mine.ndim == 2 else linked, theirs, mine)
        mixed["months"] = np.where(linked, months, own.months)
        cases = type(own)(**mixed)
        collateral_part = np.where(linked, shared_part, collateral_part)
        item_prior = items["prior_claims"].to_numpy(dtype=float)
        lien = np.where(linked, links.rank[main], lien)
        prior = np.where(linked, item_prior[main_item], prior)
    borrower = _column(tape, "borrower_recovery")
    tape_guarantor = _column(tape, "guarantor_recovery")
    other = _column(tape, "other_recovery")
    before = np.minimum(claim, borrower + tape_guarantor + collateral_part + other)
    guarantee_part = np.zeros(n)
    if guarantees is not None and len(guarantees):
        links = guarantee_links(tape, guarantees)
        unrecovered = np.maximum(claim - before, 0.0)
        amount = guarantees["expected_recovery"].to_numpy(dtype=float)
        draw, _ = allocate(amount, links.item, links.loan, links.rank, unrecovered, unrecovered)
        guarantee_part = np.bincount(links.loan, draw, n)
    guarantor = tape_guarantor + guarantee_part
    out = combine_valuation(tape, a, cases, collateral_part, guarantor, lien, prior, with_parts=True)
    out["guarantee_recovery"] = guarantee_part
    _cap_borrowers(out)
    return out


def _plain(value):
    """A numpy scalar as the Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame))
    return np.nan_to_num(frame[name].to_numpy(dtype=float))


def _cap_borrowers(out: pd.DataFrame) -> None:
    """A borrower's total recovery never above its total claim (S&P's cap on credited
    recoveries; implied by the per-loan cap, enforced here against override columns)."""
    if "borrower" not in out.columns:
        return
    key = out["borrower"].astype(object).where(out["borrower"].notna(), out["loan_id"]).astype(str)
    totals = out.groupby(key)[["expected_recovery", "claim"]].transform("sum")
    over = totals["expected_recovery"] > totals["claim"] * (1 + 1e-12)
    if over.any():
        factor = (totals["claim"] / totals["expected_recovery"]).where(over, 1.0)
        out["expected_recovery"] = out["expected_recovery"] * factor
