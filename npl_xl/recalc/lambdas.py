"""LET, LAMBDA and the functions that call one: MAP, REDUCE, SCAN, BYROW, BYCOL, MAKEARRAY.

``formulas`` 1.3.4 parses LAMBDA and LET itself (its ``Lambda`` token), but the engine
never let ``_xlpm.`` parameters through (they were undefined names), and this module is
ours to test against Excel's values: it gives every LAMBDA cell of the corpus Excel's
value (benchmarks/results/recalc_parity.md). GROUPBY and PIVOTBY, which take a function
too, are left to ``formulas`` (see :data:`_FORMULAS_OWN`). A formula
using these functions is therefore split here into a small tree: each call of a function
of :data:`NAMES` (and each invocation ``LAMBDA(...)(args)``, ``_xlpm.f(args)``) is a node
of our own; everything between them is ordinary formula text, compiled by ``formulas``
with the parameters (``_xlpm.x`` -> input ``_XLPM_X``) and the nested calls (``_LAM_k``)
as its inputs. So ``=SUM(MAP(A1:B2, LAMBDA(x, x^2)))`` is the text ``=SUM(_LAM_0)``
around a MAP node whose lambda body is the text ``=_XLPM_X^2``.

Excel's file syntax (what this module reads): ``_xlfn.LAMBDA(_xlpm.x,_xlpm.x+1)``,
``_xlfn.LET(_xlpm.x,1,...)``, ``_xleta.SUM`` (a built-in function passed where a LAMBDA
is expected, "eta reduction"). The references in the text have been replaced by the
engine's placeholders (``A1``, ``A2:B2``) before it gets here; prefixes are dropped.

Semantics follow Microsoft's documentation of each function ("LAMBDA function", "LET
function", "MAP function", ... on support.microsoft.com): parameters bound by position,
a wrong number of arguments is #VALUE!, a LAMBDA left uncalled as a cell's value is
#CALC!, as is a lambda that returns an array where MAP/BYROW/BYCOL/SCAN/MAKEARRAY want
one value per element. ``#CALC!`` is not among the error values ``formulas`` (and this
project's writer) knows, so it is written as ``#VALUE!`` with the reason in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import schedula as sh

__all__ = ["NAMES", "uses_lambdas", "compile_lambda_formula", "LambdaFormula"]

#: functions evaluated here (bare names, as the engine's templates spell them)
NAMES = frozenset({"LET", "LAMBDA", "MAP", "REDUCE", "SCAN", "BYROW", "BYCOL", "MAKEARRAY",
                   "ISOMITTED"})

_PREFIX = re.compile(r"(?i)(?:_xlfn\.|_xlws\.)+")
_DETECT = re.compile(r"(?i)(?<![\w.])(?:(?:_xlfn\.)?(?:LET|LAMBDA|MAP|REDUCE|SCAN|BYROW|BYCOL"
                     r"|MAKEARRAY|ISOMITTED)\(|_xlpm\.|_xleta\.)")
_IDENT = re.compile(r"[A-Za-z_\\][\w.\\]*")


#: functions ``formulas`` 1.3.4 evaluates with a built-in passed by name (its own
#: ``_xleta.`` token): formulas containing them are compiled by ``formulas`` as they are
_FORMULAS_OWN = re.compile(r"(?i)(?<![\w.])(?:_xlfn\.)?(?:GROUPBY|PIVOTBY)\(")


def uses_lambdas(text: str) -> bool:
    """Does a template's text need this module (outside string literals)?"""
    code = re.sub(r'"(?:[^"]|"")*"', '""', text)
    return bool(_DETECT.search(code)) and not _FORMULAS_OWN.search(code)


class _Calc(Exception):
    """An Excel error raised while evaluating (code, reason)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# ---------------------------------------------------------------------------- the tree

@dataclass
class _Plain:
    """Formula text compiled by ``formulas``; ``inputs`` in the compiled function's order."""
    function: Callable
    inputs: tuple[str, ...]
    lifted: dict  # '_LAM_k' -> node


@dataclass
class _Param:
    name: str  # '_XLPM_X'


@dataclass
class _Omitted:
    pass


@dataclass
class _Call:
    name: str  # bare upper-case name of NAMES
    args: list


@dataclass
class _Invoke:
    callee: Any  # a node giving a closure
    args: list


@dataclass
class _Eta:
    name: str  # '_xleta.SUM' -> 'SUM'


@dataclass
class Closure:
    """A LAMBDA value: parameters, body, the variables it was defined among."""
    params: tuple[str, ...]
    body: Any
    env: dict


@dataclass
class _EtaFunction:
    """A built-in function used as a LAMBDA (``_xleta.SUM``)."""
    name: str


# ------------------------------------------------------------------------------ parsing

def _skip_string(text: str, i: int) -> int:
    """Index after the string literal starting at ``text[i] == '"'``."""
    i += 1
    while i < len(text):
        if text[i] == '"':
            if text[i + 1:i + 2] == '"':
                i += 2
                continue
            return i + 1
        i += 1
    raise _Calc("#NAME?", "unterminated string literal")


def _outside_literals(text: str, i: int = 0):
    """(index, character) of ``text`` from ``i`` on, skipping string literals and array
    constants (whose commas and parentheses are not the formula's)."""
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if ch == "{":
            close = text.find("}", i)
            i = len(text) if close < 0 else close + 1
            continue
        yield i, ch
        i += 1


def _closing(text: str, i: int) -> int:
    """Index of the parenthesis closing the one at ``text[i] == '('``."""
    depth = 0
    for i, ch in _outside_literals(text, i):
        depth += (ch == "(") - (ch == ")")
        if ch == ")" and depth == 0:
            return i
    raise _Calc("#NAME?", "unbalanced parentheses")


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated pieces of an argument list's inside."""
    pieces, depth, start = [], 0, 0
    for i, ch in _outside_literals(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def _param_name(name: str) -> str:
    """``_xlpm.rate`` -> the input name ``_XLPM_RATE`` (names are case-insensitive)."""
    return "_XLPM_" + re.sub(r"\W", "_", name[len("_xlpm."):]).upper()


class _Parser:
    def __init__(self, compile_text: Callable[[str], Any]):
        self.compile_text = compile_text
        self.count = 0

    def lift(self, node, lifted: dict) -> str:
        name = f"_LAM_{self.count}"
        self.count += 1
        lifted[name] = node
        return name

    def args(self, inside: str) -> list:
        pieces = _split_args(inside)
        if len(pieces) == 1 and not pieces[0].strip():
            return []
        return [self.expression(p) for p in pieces]

    def expression(self, text: str):
        """One argument's text -> a node."""
        stripped = text.strip()
        if not stripped:
            return _Omitted()
        out: list[str] = []
        lifted: dict = {}
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == '"':
                end = _skip_string(text, i)
                out.append(text[i:end])
                i = end
                continue
            if ch == "{":
                end = text.find("}", i)
                end = len(text) if end < 0 else end + 1
                out.append(text[i:end])
                i = end
                continue
            m = _IDENT.match(text, i)
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_.")):
                word, end = m.group(0), m.end()
                lower = word.lower()
                bare = _PREFIX.sub("", word).upper()
                if end < len(text) and text[end] == "(" and (
                        bare in NAMES or lower.startswith("_xlpm.")):
                    close = _closing(text, end)
                    arguments = self.args(text[end + 1:close])
                    node = _Invoke(_Param(_param_name(word)), arguments) \
                        if lower.startswith("_xlpm.") else _Call(bare, arguments)
                    box = [node]
                    close = self._invocations(text, close, box)
                    out.append(self.lift(box[0], lifted))
                    i = close + 1
                    continue
                if lower.startswith("_xlpm."):
                    out.append(_param_name(word))
                    i = end
                    continue
                if lower.startswith("_xleta."):
                    out.append(self.lift(_Eta(word.split(".", 1)[1].upper()), lifted))
                    i = end
                    continue
                out.append(word)
                i = end
                continue
            if ch == "(" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_.")):
                close = _closing(text, i)
                after = close + 1
                while after < len(text) and text[after] == " ":
                    after += 1
                if after < len(text) and text[after] == "(":  # (LAMBDA(...))(args)
                    box = [self.expression(text[i + 1:close])]
                    close = self._invocations(text, close, box)
                    out.append(self.lift(box[0], lifted))
                    i = close + 1
                    continue
            out.append(ch)
            i += 1
        body = "".join(out).strip()
        if body in lifted:
            return lifted[body]
        if re.fullmatch(r"_XLPM_\w+", body):
            return _Param(body)
        function = self.compile_text("=" + body)
        return _Plain(function, tuple(function.inputs), lifted)

    def _invocations(self, text: str, close: int, box: list) -> int:
        """``F(...)(a)(b)``: wrap ``box[0]`` in an invocation per following argument list."""
        while close + 1 < len(text) and text[close + 1] == "(":
            end = _closing(text, close + 1)
            box[0] = _Invoke(box[0], self.args(text[close + 2:end]))
            close = end
        return close


# --------------------------------------------------------------------------- evaluating

def _is_error(value) -> bool:
    from npl_xl.recalc.functions import is_error

    return is_error(value)


def _grid(value) -> np.ndarray:
    """Any value as a 2-D object array (a scalar is 1x1)."""
    from formulas.ranges import Ranges

    if isinstance(value, Ranges):
        value = value.value
    if isinstance(value, np.ndarray):
        if value.ndim == 2:
            return value
        if value.ndim == 0:
            value = value.item()
        else:
            return value.reshape(1, -1)
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = value
    return out


def _one(value):
    """A value that must be one value: a 1x1 array's element; a larger array is #CALC!."""
    if isinstance(value, (Closure, _EtaFunction)):
        raise _Calc("#VALUE!", "a LAMBDA was returned where a value is needed (Excel: #CALC!)")
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return value.ravel()[0] if value.ndim else value.item()
        raise _Calc("#VALUE!", "a LAMBDA returned an array where one value per element is "
                               "needed (Excel: #CALC!)")
    return value


def _as_array(values) -> np.ndarray:
    from formulas.functions import Array

    array = np.empty((len(values), len(values[0]) if values else 0), dtype=object)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            array[i, j] = v
    return array.view(Array)


class LambdaFormula:
    """A compiled formula using LET/LAMBDA...: called like a ``formulas`` function.

    ``inputs``: the engine's placeholders (``A1``, ``A2:B2``) the formula reads, in the
    order the call takes their values.
    """

    def __init__(self, root, inputs: tuple[str, ...]):
        self.root, self.inputs = root, inputs

    def __call__(self, *args):
        from npl_xl.recalc.functions import LOG, formulas_error
        from npl_xl.errors import XlError

        env = dict(zip(self.inputs, args))
        try:
            value = _evaluate(self.root, env)
            if isinstance(value, (Closure, _EtaFunction)):
                raise _Calc("#VALUE!", "the formula's value is a LAMBDA that is never called "
                                       "(Excel: #CALC!)")
            return value
        except _Calc as exc:
            LOG.add(XlError(exc.code, exc.message))
            return formulas_error(exc.code)


def _inputs_of(node, found: dict) -> None:
    if isinstance(node, _Plain):
        for name in node.inputs:
            if not name.startswith(("_XLPM_", "_LAM_")):
                found.setdefault(name, None)
        for child in node.lifted.values():
            _inputs_of(child, found)
    elif isinstance(node, (_Call, _Invoke)):
        if isinstance(node, _Invoke):
            _inputs_of(node.callee, found)
        for child in node.args:
            _inputs_of(child, found)


def compile_lambda_formula(text: str, compile_text: Callable[[str], Any]) -> LambdaFormula:
    """Template text (``=MAP(A1:B2,LAMBDA(_xlpm.x,_xlpm.x^2))``) -> :class:`LambdaFormula`.

    ``compile_text``: compiles plain formula text with ``formulas`` (the engine's cache).
    Raises ``ValueError`` for text this module cannot split (the engine reports the cell).
    """
    body = text[1:] if text.startswith("=") else text
    try:
        root = _Parser(compile_text).expression(body)
    except _Calc as exc:
        raise ValueError(exc.message) from None
    found: dict = {}
    _inputs_of(root, found)
    return LambdaFormula(root, tuple(found))


def _evaluate(node, env: dict):
    if isinstance(node, _Plain):
        values = []
        for name in node.inputs:
            if name in node.lifted:
                value = _evaluate(node.lifted[name], env)
            elif name in env:
                value = env[name]
            else:
                raise _Calc("#NAME?", f"{name.replace('_XLPM_', '').lower()} is not a "
                                      "parameter or LET name here")
            if isinstance(value, (Closure, _EtaFunction)):
                raise _Calc("#VALUE!", "a LAMBDA is used as a value (Excel: #CALC!)")
            values.append(value)
        return node.function(*values)
    if isinstance(node, _Param):
        if node.name not in env:
            raise _Calc("#NAME?", f"{node.name.replace('_XLPM_', '').lower()} is not a "
                                  "parameter or LET name here")
        return env[node.name]
    if isinstance(node, _Omitted):
        from npl_xl.recalc.functions import OMITTED

        return OMITTED
    if isinstance(node, _Eta):
        return _EtaFunction(node.name)
    if isinstance(node, _Invoke):
        callee = _evaluate(node.callee, env)
        return _apply(callee, [_evaluate(a, env) for a in node.args])
    if isinstance(node, _Call):
        return _CALLS[node.name](node.args, env)
    raise _Calc("#VALUE!", f"cannot evaluate {type(node).__name__}")


def _apply(function, args: list):
    """Call a LAMBDA (or an eta-reduced built-in) with argument values."""
    if isinstance(function, _EtaFunction):
        from npl_xl.recalc.aggregates import call_builtin

        return call_builtin(function.name, *args)
    if not isinstance(function, Closure):
        raise _Calc("#VALUE!", "the value called is not a LAMBDA")
    if len(args) != len(function.params):
        raise _Calc("#VALUE!", f"the LAMBDA takes {len(function.params)} arguments, "
                               f"given {len(args)}")
    env = dict(function.env)
    env.update(zip(function.params, args))
    return _evaluate(function.body, env)


def _function_arg(node, env) -> Closure | _EtaFunction:
    value = _evaluate(node, env)
    if not isinstance(value, (Closure, _EtaFunction)):
        raise _Calc("#VALUE!", "the last argument must be a LAMBDA")
    return value


def _let(args, env):
    """LET(name1, value1, [name2, value2, ...], calculation)."""
    if len(args) < 3 or len(args) % 2 == 0:
        raise _Calc("#VALUE!", "LET takes pairs of name and value, then a calculation")
    scope = dict(env)
    for name, value in zip(args[:-1:2], args[1:-1:2]):
        if not isinstance(name, _Param):
            raise _Calc("#NAME?", "a LET name must be a plain name")
        scope[name.name] = _evaluate(value, scope)
    return _evaluate(args[-1], scope)


def _lambda(args, env):
    """LAMBDA([parameter1, ...], calculation): a function value."""
    if not args:
        raise _Calc("#VALUE!", "LAMBDA needs a calculation")
    params = []
    for p in args[:-1]:
        if not isinstance(p, _Param):
            raise _Calc("#VALUE!", "a LAMBDA parameter must be a plain name")
        params.append(p.name)
    return Closure(tuple(params), args[-1], dict(env))


def _map(args, env):
    """MAP(array1, [array2, ...], lambda): the lambda of each element (of the arrays
    together, element by element); arrays of other shapes give #N/A where they lack one."""
    if len(args) < 2:
        raise _Calc("#VALUE!", "MAP needs an array and a LAMBDA")
    function = _function_arg(args[-1], env)
    arrays = []
    for a in args[:-1]:
        value = _evaluate(a, env)
        if isinstance(value, (Closure, _EtaFunction)):
            raise _Calc("#VALUE!", "MAP takes one LAMBDA, after the arrays")
        arrays.append(_grid(value))
    rows = max(a.shape[0] for a in arrays)
    cols = max(a.shape[1] for a in arrays)
    from npl_xl.recalc.functions import formulas_error

    out = []
    for i in range(rows):
        row = []
        for j in range(cols):
            picked = []
            for a in arrays:
                ii = 0 if a.shape[0] == 1 else i
                jj = 0 if a.shape[1] == 1 else j
                picked.append(a[ii, jj] if ii < a.shape[0] and jj < a.shape[1]
                              else formulas_error("#N/A"))
            row.append(_one(_apply(function, picked)))
        out.append(row)
    return _as_array(out)


def _accumulate(args, env, name: str):
    if len(args) != 3:
        raise _Calc("#VALUE!", f"{name} takes an initial value, an array and a LAMBDA")
    function = _function_arg(args[2], env)
    from npl_xl.recalc.functions import OMITTED

    initial = _evaluate(args[0], env)
    accumulator = 0.0 if initial is OMITTED else initial
    array = _grid(_evaluate(args[1], env))
    return function, accumulator, array


def _reduce(args, env):
    """REDUCE([initial_value], array, lambda(accumulator, value)): the accumulator after
    every element, row by row (an omitted initial value is 0)."""
    function, accumulator, array = _accumulate(args, env, "REDUCE")
    for value in array.ravel().tolist():
        accumulator = _apply(function, [accumulator, value])
    return accumulator


def _scan(args, env):
    """SCAN([initial_value], array, lambda(accumulator, value)): every intermediate
    accumulator, in the array's shape."""
    function, accumulator, array = _accumulate(args, env, "SCAN")
    out = []
    for row in array.tolist():
        results = []
        for value in row:
            accumulator = _one(_apply(function, [accumulator, value]))
            results.append(accumulator)
        out.append(results)
    return _as_array(out)


def _by(args, env, axis: int):
    name = "BYROW" if axis == 0 else "BYCOL"
    if len(args) != 2:
        raise _Calc("#VALUE!", f"{name} takes an array and a LAMBDA")
    array = _grid(_evaluate(args[0], env))
    function = _function_arg(args[1], env)
    from formulas.functions import Array

    if axis == 0:
        results = [[_one(_apply(function, [array[i:i + 1, :].view(Array)]))]
                   for i in range(array.shape[0])]
    else:
        results = [[_one(_apply(function, [array[:, j:j + 1].view(Array)]))
                    for j in range(array.shape[1])]]
    return _as_array(results)


def _count(value, what: str) -> int:
    """MAKEARRAY's rows/cols: a whole number >= 1 (TRUE is 1); else #VALUE!."""
    if _is_error(value):
        raise _Calc(str(value), f"{what} is an error value")
    if isinstance(value, (bool, np.bool_)):
        value = float(value)
    if value is sh.EMPTY or isinstance(value, str) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise _Calc("#VALUE!", f"MAKEARRAY's {what} must be a number")
    if float(value) != int(value) or value < 1:
        raise _Calc("#VALUE!", f"MAKEARRAY's {what} must be a whole number of at least 1")
    return int(value)


def _makearray(args, env):
    """MAKEARRAY(rows, cols, lambda(row, col)): the lambda of each 1-based position.
    Given arrays of sizes, one array per element, of which each cell shows the first
    value (Excel's lifting of a scalar argument over an array)."""
    if len(args) != 3:
        raise _Calc("#VALUE!", "MAKEARRAY takes rows, cols and a LAMBDA")
    rows_value, cols_value = _evaluate(args[0], env), _evaluate(args[1], env)
    function = _function_arg(args[2], env)

    def make(r, c):
        height, width = _count(r, "rows"), _count(c, "cols")
        return _as_array([[_one(_apply(function, [float(i + 1), float(j + 1)]))
                           for j in range(width)] for i in range(height)])

    rows_grid, cols_grid = _grid(rows_value), _grid(cols_value)
    if rows_grid.size == 1 and cols_grid.size == 1:
        return make(rows_grid[0, 0], cols_grid[0, 0])
    from npl_xl.recalc.functions import formulas_error

    height = max(rows_grid.shape[0], cols_grid.shape[0])
    width = max(rows_grid.shape[1], cols_grid.shape[1])
    out = []
    for i in range(height):
        row = []
        for j in range(width):
            def pick(g):
                ii, jj = (0 if g.shape[0] == 1 else i), (0 if g.shape[1] == 1 else j)
                return g[ii, jj] if ii < g.shape[0] and jj < g.shape[1] else None
            r, c = pick(rows_grid), pick(cols_grid)
            if r is None or c is None:
                row.append(formulas_error("#N/A"))
                continue
            try:
                row.append(make(r, c)[0, 0])
            except _Calc as exc:
                row.append(formulas_error(exc.code))
        out.append(row)
    return _as_array(out)


def _isomitted(args, env):
    """ISOMITTED(argument): was a LAMBDA's parameter left out of the call?"""
    from npl_xl.recalc.functions import OMITTED

    if len(args) != 1:
        raise _Calc("#VALUE!", "ISOMITTED takes one argument")
    return _evaluate(args[0], env) is OMITTED


_CALLS = {
    "LET": _let, "LAMBDA": _lambda, "MAP": _map, "REDUCE": _reduce, "SCAN": _scan,
    "BYROW": lambda a, e: _by(a, e, 0), "BYCOL": lambda a, e: _by(a, e, 1),
    "MAKEARRAY": _makearray, "ISOMITTED": _isomitted,
}
