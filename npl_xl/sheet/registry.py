"""The one registry of worksheet functions, shared by the xlwings layer and the headless engine.

A worksheet function is declared once, next to the core code it calls::

    @worksheet_function(
        "NPL_BETA_PARAMS",
        Arg("mean", "number", doc="Mean recovery rate, decimal in (0, 1)"),
        Arg("sd", "number", doc="Standard deviation of the recovery rate, decimal"),
        shape="1x2: alpha, beta",
    )
    def _beta_params(mean, sd):
        return [list(beta.beta_params(mean, sd))]

The declaration says, for each argument, its contract name, its *kind* (how an Excel value
is converted: see :mod:`npl_xl.sheet.convert`) and its default when the cell is blank. Calling
``REGISTRY["NPL_BETA_PARAMS"](*raw_args)`` with Excel-shaped values (``None`` for a blank
cell, floats, strings, booleans, error literals, lists of rows for ranges) converts them,
calls the core, and returns an Excel-shaped result: a scalar or a list of rows of plain
Python scalars, with :class:`~npl_xl.errors.XlError` in place of anything that failed.
It never raises. Front ends only translate values to and from their own types.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npl_xl.sheet import convert as _convert
from npl_xl.errors import XlError, to_xl_error

__all__ = ["Arg", "REQUIRED", "WorksheetFunction", "worksheet_function", "REGISTRY", "load_all"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Sentinel default: the argument must be given.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Arg:
    """One worksheet argument.

    Parameters
    ----------
    name : str
        The contract's argument name; also the VBA parameter name, so it must be a legal
        VBA identifier.
    kind : str
        One of :data:`npl_xl.sheet.convert.KINDS`.
    default : object
        Value used when the cell is blank or the argument omitted; :data:`REQUIRED` if the
        argument is mandatory.
    doc : str
        Function-wizard help for the argument (at most 255 characters), with units.
    blanks : {"error", "skip"}
        For range kinds: a blank cell inside the range is an error, or is ignored.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    blanks: str = "error"

    def __post_init__(self):
        if self.kind not in _convert.KINDS:
            raise ValueError(f"unknown argument kind {self.kind!r} for {self.name}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class WorksheetFunction:
    """A worksheet function: its contract and the core callable behind it."""

    name: str
    impl: Callable[..., Any]
    args: tuple[Arg, ...]
    doc: str
    shape: str = "number"
    category: str = "NPL"
    cached: bool = False
    zh: str = ""
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    CACHE_SIZE = 32

    @property
    def returns_array(self) -> bool:
        return self.shape != "number" and self.shape != "text"

    def convert_args(self, raw_args) -> dict[str, Any] | XlError:
        """Convert Excel-shaped raw values into the keyword arguments of :attr:`impl`."""
        if len(raw_args) > len(self.args):
            return XlError("#VALUE!", f"{self.name} takes at most {len(self.args)} arguments")
        raw = list(raw_args) + [None] * (len(self.args) - len(raw_args))
        kwargs = {}
        for spec, value in zip(self.args, raw):
            error = _convert.first_error(value)
            if error is not None:
                return error  # Excel semantics: an error argument propagates unchanged
            kwargs[spec.name] = _convert.convert(value, spec)
        return kwargs

    def __call__(self, *raw_args) -> Any:
        """Evaluate with Excel-shaped arguments; return an Excel-shaped result. Never raises."""
        try:
            key = _cache_key(self.name, raw_args) if self.cached else None
            if key is not None and key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            kwargs = self.convert_args(raw_args)
            if isinstance(kwargs, XlError):
                return kwargs
            result = _format_result(self.impl(**kwargs), self.returns_array)
        except Exception as exc:  # the one place exceptions become Excel errors
            return to_xl_error(exc)
        if key is not None:
            self._cache[key] = result
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def clear_cache(self) -> None:
        self._cache.clear()

    def cache_key(self, raw_args) -> str | None:
        """The key identical Excel-shaped arguments share in the result cache."""
        return _cache_key(self.name, raw_args)

    def is_cached(self, raw_args) -> bool:
        """Whether these arguments' result is in the cache (a ``cached`` function only)."""
        key = self.cache_key(raw_args) if self.cached else None
        return key is not None and key in self._cache


#: Every worksheet function, by upper-case name, in declaration order.
REGISTRY: dict[str, WorksheetFunction] = {}


def worksheet_function(name: str, *args: Arg, shape: str = "number", doc: str | None = None,
                       category: str = "NPL", cached: bool = False, zh: str = ""):
    """Declare the decorated core callable as worksheet function ``name``.

    ``doc`` defaults to the first paragraph of the callable's docstring; it becomes the
    function-wizard description in Excel (at most 255 characters). ``zh`` is the Chinese
    one-line description (``npl-xl functions --lang zh``, the Chinese guide, the wizard
    help of the LibreOffice add-in).
    """

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        upper = name.upper()
        if upper in REGISTRY:
            raise ValueError(f"worksheet function {upper} declared twice")
        text = doc if doc is not None else (impl.__doc__ or "").strip().split("\n\n")[0]
        REGISTRY[upper] = WorksheetFunction(
            upper, impl, tuple(args), " ".join(text.split()), shape, category, cached, zh
        )
        return impl

    return register


def load_all() -> dict[str, WorksheetFunction]:
    """Import every module that declares worksheet functions and return the registry."""
    from npl_xl.sheet import functions  # noqa: F401  (importing registers)

    return REGISTRY


def _plain(value: Any) -> Any:
    """One result cell as a plain Python scalar; NaN and inf become #NUM!."""
    if isinstance(value, XlError):
        return value
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return XlError("#NUM!", "the result is not a finite number")
        return number
    if isinstance(value, str):
        return value
    return str(value)


def _format_result(result: Any, as_array: bool) -> Any:
    if not as_array:
        if isinstance(result, (list, tuple, np.ndarray)):
            result = np.asarray(result, dtype=object).ravel()[0]
        return _plain(result)
    if hasattr(result, "to_numpy") and hasattr(result, "columns"):  # a DataFrame
        rows = [list(map(str, result.columns))] + result.to_numpy(dtype=object).tolist()
    else:
        array = np.asarray(result, dtype=object)
        if array.ndim == 0:
            array = array.reshape(1, 1)
        elif array.ndim == 1:
            array = array.reshape(-1, 1)
        rows = array.tolist()
    return [[_plain(cell) for cell in row] for row in rows]


def _cache_key(name: str, raw_args) -> str | None:
    try:
        payload = pickle.dumps((name, _convert.canonical(raw_args)), protocol=4)
    except Exception:
        return None
    return hashlib.sha256(payload).hexdigest()
