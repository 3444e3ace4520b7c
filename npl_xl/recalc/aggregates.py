"""SUBTOTAL, AGGREGATE and the database functions (DSUM, DAVERAGE, DCOUNT, DGET, ...).

``formulas`` 1.3.4 has none of them; tables' total rows use SUBTOTAL and deal models the
D-functions. Definitions from Microsoft's documentation ("SUBTOTAL function",
"AGGREGATE function", "DSUM function" and its siblings, "Examples of complex criteria").

SUBTOTAL and AGGREGATE skip the cells of their ranges that hold SUBTOTAL or AGGREGATE
formulas themselves (so a grand total over subtotals is not counted twice); they get
their arguments as references for that (``ranges=True`` registration). Hidden rows are
not known to headless recalculation: functions 101-111 (and AGGREGATE's options that
ignore hidden rows) count every row, as if none were hidden.
"""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any

import numpy as np
import schedula as sh

__all__ = ["AGGREGATE_FUNCTIONS", "call_builtin"]

_COMPILED: dict[tuple[str, int], tuple] = {}


def call_builtin(name: str, *args):
    """Call ``formulas``' worksheet function ``name`` as a formula would (``=NAME(a, b)``):
    arrays are ranges (their text is skipped by SUM, ...), scalars typed values."""
    key = (name, len(args))
    if key not in _COMPILED:
        import formulas

        names = ",".join(f"_ARG_{k}" for k in range(len(args)))
        compiled = formulas.Parser().ast(f"={name}({names})")[1].compile()
        _COMPILED[key] = (compiled, [int(n.rsplit("_", 1)[1]) for n in compiled.inputs])
    compiled, order = _COMPILED[key]
    return compiled(*[args[k] for k in order])


def _fx():
    from npl_xl.recalc import functions

    return functions


def _values(argument) -> tuple[np.ndarray, Any]:
    """(2-D object array, the Ref or None) of a SUBTOTAL/AGGREGATE argument."""
    from formulas.ranges import Ranges

    fx = _fx()
    if isinstance(argument, Ranges):
        try:
            ref = fx.ref_of(argument)
        except fx.ReferenceFailure:
            ref = None
        value = argument.value
    else:
        ref, value = None, argument
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(1, -1)
    return array, ref


def _without(argument, nested: bool, errors: bool) -> np.ndarray:
    """The argument's values with nested SUBTOTAL/AGGREGATE cells and/or errors blanked."""
    fx = _fx()
    array, ref = _values(argument)
    if not (nested and ref is not None) and not errors:
        return array
    out = array.copy()
    for (r, c), value in np.ndenumerate(array):
        if errors and fx.is_error(value):
            out[r, c] = sh.EMPTY
        elif nested and ref is not None and fx.CONTEXT.is_subtotal is not None \
                and fx.CONTEXT.is_subtotal(ref.sheet, ref.row0 + r, ref.col0 + c):
            out[r, c] = sh.EMPTY
    from formulas.functions import Array

    return out.view(Array)


#: SUBTOTAL's function_num 1-11 (and 101-111) -> the function it applies
_SUBTOTAL = {1: "AVERAGE", 2: "COUNT", 3: "COUNTA", 4: "MAX", 5: "MIN", 6: "PRODUCT",
             7: "STDEV", 8: "STDEVP", 9: "SUM", 10: "VAR", 11: "VARP"}
#: AGGREGATE's function_num 1-19; 14-19 take an array and k
_AGGREGATE = {1: "AVERAGE", 2: "COUNT", 3: "COUNTA", 4: "MAX", 5: "MIN", 6: "PRODUCT",
              7: "STDEV.S", 8: "STDEV.P", 9: "SUM", 10: "VAR.S", 11: "VAR.P", 12: "MEDIAN",
              13: "MODE.SNGL", 14: "LARGE", 15: "SMALL", 16: "PERCENTILE.INC",
              17: "QUARTILE.INC", 18: "PERCENTILE.EXC", 19: "QUARTILE.EXC"}


def _code(value, what: str) -> int:
    fx = _fx()
    value = fx.scalar_of(value)
    if fx.is_error(value):
        raise fx.ReferenceFailure(str(value), f"{what} is an error value")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise fx.ReferenceFailure("#VALUE!", f"{what} must be a number, got {value!r}") \
            from None
    return int(math.trunc(number))


def xsubtotal(function_num, *refs):
    """SUBTOTAL(function_num, ref1, ...): AVERAGE/COUNT/.../VARP of the refs, skipping
    cells that hold SUBTOTAL or AGGREGATE formulas."""
    fx = _fx()
    try:
        number = _code(function_num, "function_num")
        name = _SUBTOTAL.get(number if number < 100 else number - 100)
        if name is None or not refs:
            raise fx.ReferenceFailure("#VALUE!", f"SUBTOTAL has no function {number}")
        return call_builtin(name, *[_without(r, True, False) for r in refs])
    except fx.ReferenceFailure as exc:
        return fx.failed(exc)


def xaggregate(function_num, options, *refs):
    """AGGREGATE(function_num, options, ref1, ...) or (function_num 14-19, options,
    array, k): options 0-3 skip nested SUBTOTAL/AGGREGATE cells, 2, 3, 6, 7 error
    values (1, 3, 5, 7 hidden rows, all visible here)."""
    fx = _fx()
    try:
        number = _code(function_num, "function_num")
        option = 0 if options is fx.OMITTED or fx.scalar_of(options) is sh.EMPTY \
            else _code(options, "options")
        name = _AGGREGATE.get(number)
        if name is None or not 0 <= option <= 7 or not refs:
            raise fx.ReferenceFailure("#VALUE!", f"AGGREGATE({number}, {option}, ...) is "
                                                 "not a function and option Excel has")
        nested, errors = option <= 3, option in (2, 3, 6, 7)
        if number >= 14:
            if len(refs) != 2:
                raise fx.ReferenceFailure("#VALUE!", f"AGGREGATE {number} takes an array "
                                                     "and k")
            k = fx.scalar_of(_values(refs[1])[0])
            return call_builtin(name, _without(refs[0], nested, errors), k)
        return call_builtin(name, *[_without(r, nested, errors) for r in refs])
    except fx.ReferenceFailure as exc:
        return fx.failed(exc)


# ---------------------------------------------------------------------------------------
# database functions

_OPERATOR = re.compile(r"^(<=|>=|<>|=|<|>)?(.*)$", re.DOTALL)


def _number_or_none(value):
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


def _matches(cell, criterion) -> bool:
    """Does a database cell meet one criteria cell (Microsoft: a text criterion without
    an operator matches text beginning with it; ``=text`` exact; wildcards ``*`` ``?``)?"""
    fx = _fx()
    if criterion is sh.EMPTY or criterion is None or criterion == "":
        return True
    if fx.is_error(cell):
        return False
    if isinstance(criterion, (bool, np.bool_)):
        return isinstance(cell, (bool, np.bool_)) and bool(cell) == bool(criterion)
    number = _number_or_none(criterion)
    if number is not None:
        value = _number_or_none(cell)
        if value is None and isinstance(cell, str):
            try:
                value = float(cell)
            except ValueError:
                value = None
        return value == number
    op, rest = _OPERATOR.match(str(criterion)).groups()
    try:
        target = float(rest)
    except ValueError:
        target = None
    if target is not None and op is not None:
        value = _number_or_none(cell)
        if value is None:
            return op == "<>"
        return {"=": value == target, "<>": value != target, "<": value < target,
                ">": value > target, "<=": value <= target, ">=": value >= target}[op]
    text = "" if cell is sh.EMPTY else str(cell).lower() if isinstance(cell, str) else None
    pattern = rest.lower()
    if op is None:  # begins with
        return text is not None and fnmatch.fnmatchcase(text, _glob(pattern) + "*")
    if op in ("=", "<>"):
        equal = text is not None and (fnmatch.fnmatchcase(text, _glob(pattern))
                                      if pattern else text == "")
        return equal if op == "=" else not equal
    if text is None or cell is sh.EMPTY:
        return False
    return {"<": text < pattern, ">": text > pattern, "<=": text <= pattern,
            ">=": text >= pattern}[op]


def _glob(pattern: str) -> str:
    """Excel wildcards (``*``, ``?``, ``~`` escapes) as an fnmatch pattern."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "~" and i + 1 < len(pattern):
            out.append("[" + pattern[i + 1] + "]")
            i += 2
            continue
        out.append(ch if ch in "*?" else "[[]" if ch == "[" else ch)
        i += 1
    return "".join(out)


def _header(value) -> str:
    return str(value).strip().lower() if value is not sh.EMPTY else ""


def _records(database, field, criteria) -> tuple[list, list]:
    """(values of ``field`` in the matching records, matching record rows)."""
    fx = _fx()
    db, _ = _values(database)
    crit, _ = _values(criteria)
    if db.shape[0] < 1 or crit.shape[0] < 2:
        raise fx.ReferenceFailure("#VALUE!", "the database and the criteria need a header "
                                             "row (and the criteria a row of conditions)")
    headers = [_header(h) for h in db[0]]
    column = None
    if field is not fx.OMITTED and field is not None:
        name = fx.scalar_of(field)
        if fx.is_error(name):
            raise fx.ReferenceFailure(str(name), "field is an error value")
        number = _number_or_none(name)
        if number is not None:
            column = int(number) - 1
            if not 0 <= column < db.shape[1]:
                raise fx.ReferenceFailure("#VALUE!", f"field {int(number)} is not a column "
                                                     "of the database")
        else:
            if _header(name) not in headers:
                raise fx.ReferenceFailure("#VALUE!", f"field {name!r} is not a header of "
                                                     "the database")
            column = headers.index(_header(name))
    conditions = []
    for row in crit[1:]:
        tests = []
        for header, criterion in zip(crit[0], row):
            if criterion is sh.EMPTY or criterion == "":
                continue
            if _header(header) not in headers:
                raise fx.ReferenceFailure("#VALUE!", f"criteria header {header!r} is not a "
                                                     "header of the database")
            tests.append((headers.index(_header(header)), criterion))
        conditions.append(tests)
    rows = [record for record in db[1:]
            if any(all(_matches(record[i], c) for i, c in tests) for tests in conditions)]
    return ([record[column] for record in rows] if column is not None else None), rows


def _database(kind: str):
    def function(database, field=None, criteria=None):
        fx = _fx()
        try:
            if criteria is None:
                raise fx.ReferenceFailure("#VALUE!", f"D{kind} takes database, field, "
                                                     "criteria")
            values, rows = _records(database, field, criteria)
            if values is None:
                if kind == "COUNT":  # DCOUNT without a field: the matching records
                    return float(len(rows))
                raise fx.ReferenceFailure("#VALUE!", "field is missing")
            if kind == "GET":
                if not values:
                    raise fx.ReferenceFailure("#VALUE!", "DGET: no record matches")
                if len(values) > 1:
                    raise fx.ReferenceFailure("#NUM!", "DGET: more than one record matches")
                return values[0]
            if kind == "COUNTA":
                return float(sum(1 for v in values if v is not sh.EMPTY and v != ""))
            error = next((v for v in values if fx.is_error(v)), None)
            if error is not None:
                return error
            numbers = [n for n in (_number_or_none(v) for v in values) if n is not None]
            if kind == "COUNT":
                return float(len(numbers))
            if kind == "SUM":
                return float(math.fsum(numbers))
            if kind == "PRODUCT":
                return float(math.prod(numbers)) if numbers else 0.0
            if kind in ("MAX", "MIN"):
                return float((max if kind == "MAX" else min)(numbers)) if numbers else 0.0
            if kind == "AVERAGE":
                if not numbers:
                    raise fx.ReferenceFailure("#DIV/0!", "DAVERAGE: no number matches")
                return math.fsum(numbers) / len(numbers)
            sample = kind in ("STDEV", "VAR")
            if len(numbers) < (2 if sample else 1):
                raise fx.ReferenceFailure("#DIV/0!", f"D{kind}: too few numbers match")
            mean = math.fsum(numbers) / len(numbers)
            variance = math.fsum((n - mean) ** 2 for n in numbers) / (
                len(numbers) - (1 if sample else 0))
            return math.sqrt(variance) if kind.startswith("STDEV") else variance
        except fx.ReferenceFailure as exc:
            return fx.failed(exc)
    function.__name__ = f"xd{kind.lower()}"
    function.__doc__ = f"D{kind}(database, field, criteria) (Microsoft's definition)."
    return function


#: name -> implementation taking references (registered with ranges=True)
AGGREGATE_FUNCTIONS = {"SUBTOTAL": xsubtotal, "AGGREGATE": xaggregate, "_XLFN.AGGREGATE":
                       xaggregate,
                       **{f"D{kind}": _database(kind) for kind in (
                           "SUM", "AVERAGE", "COUNT", "COUNTA", "GET", "MAX", "MIN", "PRODUCT",
                           "STDEV", "STDEVP", "VAR", "VARP")}}
