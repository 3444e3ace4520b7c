"""EBA NPL data templates into npl-xl's Tape, Collateral and Guarantees tables.

The EBA's NPL data templates (Commission Implementing Regulation (EU) 2023/2083, Annex I)
keep counterparties (template 1), the links between them, loans and protections (2.1
borrower-loan, 2.2 / 2.3 loan-protection, 2.4 guarantor-protection), loans (3) and
protections, i.e. collateral, guarantees and enforcement (4), in separate tables. Each table
is recognised by its headers (EBA field names, with or without their index, as in the alias
table's ``eba`` rows; see docs/TAPES.md), whatever its file or sheet is called:

- loans: Loan Identifier with Principal Balance or Legal Balance;
- counterparties: Counterparty Identifier with Name or Role, no Loan Identifier;
- protections: Protection Identifier with a property type, collateral type, valuation or
  guarantee amount;
- links: two of Counterparty, Loan and Protection Identifier and nothing else of the above.

Mapping:

- Tape: loan_id, borrower (the loan's Counterparty Identifier or the borrower-loan link),
  claim = Legal Balance (3.12) or principal + interest + other balances (3.09-3.11),
  stage from Stage Reached in Legal Proceedings (3.26) or Loan Legal Status (3.24)
  (:data:`LEGAL_STAGES`), province from a Province/Region column, the city of the borrower or
  property when it names a province, or the ``default_province`` given; collateral_type and
  collateral_value of the loan's first linked property (informative: linked loans are
  valued from the Collateral table).
- Collateral: every protection that is not a guarantee: collateral_type from Type of
  Immovable Property (4.01) or Collateral Type (4.02) (:func:`collateral_code`),
  collateral_value = latest external valuation (4.23), else internal (4.19), else court
  appraisal (4.34); appraisal_date from 4.24 / 4.20; lien_rank from Lien Position on the
  link (EBA v1) or the protection (4.09 / 4.45); prior_claims from Higher Ranking Loan.
- Guarantees: protections of type guarantee, or linked to a guarantor (2.4): guarantor,
  loan_ids, guarantee_amount (4.27) kept, expected_recovery = guarantee_rate x amount (the
  templates give what is guaranteed, not what the guarantor will pay: set the rate, or fill
  the column in).

Fields that map to none of ours are kept as extra columns of the table they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from npl_xl.errors import InputTypeError, TableError
from npl_xl.inputs.codes import PROVINCES, normalise
from npl_xl.inputs.headers import map_headers

__all__ = ["EbaTables", "classify", "eba_to_deal", "LEGAL_STAGES", "collateral_code"]

#: EBA stage reached in legal proceedings (3.26) and loan legal status (3.24) -> our stage.
LEGAL_STAGES = {
    "initialstage": "filed", "proofofclaimfiled": "judgment",
    "noticeofintentiontosellsecuredassets": "auction_1", "distributionmadetoseller": "distribution",
    "noticeofendofprocedure": "distribution",
    "legalproceedings": "filed", "courtproceedings": "filed", "outofcourt": "not_filed",
    "outofcourtsettlement": "not_filed", "none": "not_filed", "nolegalaction": "not_filed",
}
_TYPE_WORDS = (
    ("residential", ("resid", "house", "flat", "apartment", "dwelling", "住宅", "住房")),
    ("commercial", ("commerc", "office", "retail", "shop", "hotel", "mixed", "商业", "商铺", "办公")),
    ("industrial", ("industr", "warehouse", "factory", "logistic", "厂房", "工业")),
    ("land", ("land", "agricult", "development", "plot", "土地")),
)
_GUARANTEE_WORDS = ("guarantee", "guaranty", "surety", "保证", "担保")


def collateral_code(value: Any) -> str:
    """Our collateral type for an EBA property or collateral type (other when unknown)."""
    text = str(value or "").casefold()
    for code, words in _TYPE_WORDS:
        if any(w in text for w in words):
            return code
    return "other"


def _is_guarantee(value: Any) -> bool:
    text = str(value or "").casefold()
    return any(w in text for w in _GUARANTEE_WORDS)


@dataclass
class EbaTables:
    """The source tables by role: lists of (source name, DataFrame with our EBA field names
    as columns, unmapped headers as they were)."""

    loans: list = field(default_factory=list)
    counterparties: list = field(default_factory=list)
    protections: list = field(default_factory=list)
    links: list = field(default_factory=list)
    ignored: list = field(default_factory=list)


def _frame(rows: list[list[Any]]) -> tuple[pd.DataFrame, set[str]]:
    header = [h for h in rows[0]]
    mapping = map_headers("eba", header)
    names = []
    for j, title in enumerate(header):
        mapped = next((f for f, k in mapping.fields.items() if k == j), None)
        names.append(mapped or (str(title).strip() if title is not None else f"column_{j + 1}"))
    body = [list(r) + [None] * (len(header) - len(r)) for r in rows[1:]
            if any(c is not None and str(c).strip() != "" for c in r)]
    return pd.DataFrame([r[:len(header)] for r in body], columns=names), set(mapping.fields)


def classify(sources: list[tuple[str, list[list[Any]]]]) -> EbaTables:
    """Sort the source tables (name, rows with the header first) by role from their headers."""
    tables = EbaTables()
    for name, rows in sources:
        if not rows or not rows[0]:
            continue
        frame, fields = _frame(rows)
        ids = {"counterparty_id", "loan_id", "protection_id"} & fields
        if "loan_id" in fields and fields & {"principal", "legal_balance"}:
            tables.loans.append((name, frame))
        elif "protection_id" in fields and fields & {"property_type", "collateral_type", "external_value",
                                                     "internal_value", "guarantee_amount", "court_appraisal"}:
            tables.protections.append((name, frame))
        elif "counterparty_id" in fields and "loan_id" not in fields and fields & {
                "counterparty_name", "role", "city", "counterparty_legal_status"}:
            tables.counterparties.append((name, frame))
        elif len(ids) >= 2:
            tables.links.append((name, frame))
        else:
            tables.ignored.append(name)
    if not tables.loans:
        raise InputTypeError("no EBA loan table found (a table with Loan Identifier and Principal "
                             "Balance or Legal Balance, fields 3.01 and 3.09/3.12)", argument="source")
    return tables


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", "")) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    return number if number == number else None


def _province(*candidates: Any) -> str | None:
    for value in candidates:
        if value is not None and PROVINCES.find(value) is not None:
            return PROVINCES.find(value)
    return None


def _stage(stage: Any, status: Any) -> str:
    for value in (stage, status):
        key = normalise(value) if _text(value) else ""
        if key in LEGAL_STAGES:
            return LEGAL_STAGES[key]
    return "not_filed"


def _concat(items: list) -> pd.DataFrame:
    frames = [f for _, f in items]
    return pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()


def _get(row: pd.Series, name: str) -> Any:
    return row[name] if name in row.index else None


_OURS = {"counterparty_id", "counterparty_name", "role", "city", "counterparty_legal_status", "loan_id",
         "principal", "interest", "fees", "legal_balance", "legal_status", "legal_stage", "protection_id",
         "property_type", "collateral_type", "property_city", "lien_position", "higher_ranking_loan",
         "internal_value", "internal_date", "external_value", "external_date", "guarantee_amount",
         "court_appraisal", "province"}


def eba_to_deal(tables: EbaTables, default_province: str | None = None, guarantee_rate: float = 0.0
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(Tape, Collateral, Guarantees) frames in our canonical columns (module docstring),
    unmapped EBA fields as extra columns. Raises TableError listing every loan or item
    without a province when no default_province is given."""
    default = PROVINCES.lookup(default_province, "--province") if default_province else None
    loans = _concat(tables.loans)
    counterparties = _concat(tables.counterparties)
    protections = _concat(tables.protections)
    links = _concat(tables.links)
    party = {}
    for _, row in counterparties.iterrows():
        cid = _text(_get(row, "counterparty_id"))
        if cid:
            party[cid] = row
    borrower_of, guarantor_of = {}, {}
    loan_protections: dict[str, list[tuple[str, Any]]] = {}
    for _, row in links.iterrows():
        cid, lid, pid = (_text(_get(row, c)) for c in ("counterparty_id", "loan_id", "protection_id"))
        if cid and lid:
            borrower_of.setdefault(lid, cid)
        if cid and pid:
            guarantor_of.setdefault(pid, cid)
        if lid and pid:
            loan_protections.setdefault(pid, []).append((lid, _number(_get(row, "lien_position"))))
    problems: list[str] = []

    # --- protections: collateral items and guarantees
    collateral_rows, guarantee_rows, first_property = [], [], {}
    loans_province = {}
    for k, row in protections.iterrows():
        pid = _text(_get(row, "protection_id"))
        linked = loan_protections.get(pid, [])
        if not pid or not linked:
            continue
        extras = {c: row[c] for c in row.index if c not in _OURS}
        kind = _get(row, "property_type") or _get(row, "collateral_type")
        if _is_guarantee(_get(row, "collateral_type")) or (pid in guarantor_of and _get(row, "property_type") is None):
            amount = _number(_get(row, "guarantee_amount")) or 0.0
            guarantor = guarantor_of.get(pid) or pid
            name = _text(_get(party.get(guarantor, pd.Series(dtype=object)), "counterparty_name"))
            guarantee_rows.append({"guarantor": name or guarantor, "loan_ids": ",".join(l for l, _ in linked),
                                   "expected_recovery": guarantee_rate * amount, "guarantee_amount": amount,
                                   "protection_id": pid, **extras})
            continue
        value = next((v for v in (_number(_get(row, c)) for c in ("external_value", "internal_value",
                                                                   "court_appraisal")) if v is not None), None)
        date = _get(row, "external_date") if _text(_get(row, "external_date")) else _get(row, "internal_date")
        province = _province(_get(row, "province"), _get(row, "property_city")) or default
        if province is None:
            problems.append(f"protection {pid}: no province (give a Province column, a city that names "
                            "a province, or --province)")
        item_rank = _number(_get(row, "lien_position"))
        ranks = [int(r if r is not None else (item_rank or 1)) for _, r in linked]
        ctype = collateral_code(kind)
        collateral_rows.append({
            "collateral_id": pid, "loan_ids": ",".join(l for l, _ in linked),
            "collateral_type": ctype, "province": province, "collateral_value": value,
            "lien_rank": ";".join(str(r) for r in ranks),
            "prior_claims": _number(_get(row, "higher_ranking_loan")) or 0.0,
            "appraisal_date": _text(date) and date, **extras})
        for lid, _ in linked:
            first_property.setdefault(lid, (ctype, value))
            loans_province.setdefault(lid, province)

    # --- loans
    tape_rows = []
    stage_of = {}
    for _, row in loans.iterrows():
        lid = _text(_get(row, "loan_id"))
        if not lid:
            continue
        borrower = _text(_get(row, "counterparty_id")) or borrower_of.get(lid)
        who = party.get(borrower, pd.Series(dtype=object))
        province = (_province(_get(row, "province"), _get(who, "province"), _get(who, "city"))
                    or loans_province.get(lid) or default)
        if province is None:
            problems.append(f"loan {lid}: no province (give a Province column, a city that names a "
                            "province, or --province)")
        ctype, value = first_property.get(lid, ("none", None))
        stage = _stage(_get(row, "legal_stage"), _get(row, "legal_status"))
        stage_of[lid] = stage
        extras = {c: row[c] for c in row.index if c not in _OURS}
        tape_rows.append({
            "loan_id": lid, "borrower": _text(_get(who, "counterparty_name")) or borrower,
            "province": province, "claim": _number(_get(row, "legal_balance")),
            "principal": _number(_get(row, "principal")), "interest": _number(_get(row, "interest")),
            "fees": _number(_get(row, "fees")), "collateral_type": ctype,
            "collateral_value": value if ctype != "none" else None, "stage": stage, **extras})
    if problems:
        raise TableError(problems, argument="source")
    for item in collateral_rows:  # an item is at the stage of its first loan
        item["stage"] = stage_of.get(item["loan_ids"].split(",")[0], "not_filed")
    tape = pd.DataFrame(tape_rows)
    collateral = pd.DataFrame(collateral_rows, columns=None if collateral_rows else
                              ["collateral_id", "loan_ids", "collateral_type", "province", "collateral_value",
                               "lien_rank", "prior_claims", "stage", "appraisal_date"])
    guarantees = pd.DataFrame(guarantee_rows, columns=None if guarantee_rows else
                              ["guarantor", "loan_ids", "expected_recovery", "guarantee_amount"])
    return tape, collateral, guarantees
