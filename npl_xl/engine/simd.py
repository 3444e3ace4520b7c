"""Four table lookups at once, as LLVM vector code: the kernels' cubic Hermite tables.

Both of the kernels' tables (the normal quantile :data:`npl_xl.engine.paths.NORMAL_TABLE`
and each loan's Beta quantile table, :mod:`npl_xl.engine.quantile`) are arrays of shape
(K, 4): row k holds the Horner coefficients c0..c3 of interval k, 32 contiguous bytes. LLVM
does not vectorise a loop of scalar lookups on AVX2 (it would need four gathers and judges
them too dear), so each lookup ran alone. Here four lookups are one piece of vector code:
the four positions t and fractions f in vector registers, the four rows loaded as four
256-bit loads and transposed into c0..c3 with shuffles, then the Horner step on four lanes.

The operations are exactly those of the scalar lookups (``_table_ndtri`` in paths,
``quantile.table_lookup``), in the same order, with the same floating-point flags as the
kernels (``contract``: a multiply feeding an add may become one FMA, as in the scalar code
compiled with ``fastmath={"contract"}``), so the results are bit-identical
(tests/engine/test_simd.py checks it on edge and random points). On a CPU without AVX LLVM
splits the vectors into SSE2 halves: the same numbers, slower.

Requirements (checked when a kernel is compiled, not per call): ``table`` a C-contiguous
float64 array (K, 4); ``x`` and ``out`` C-contiguous float64 vectors; 0 <= j and
j + 3 < len(x), len(out) (the caller's loop guarantees it: no bounds check here).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import errors
from numba.extending import intrinsic

__all__ = ["hermite4", "hermite4_unit"]

_DOUBLE = ir.DoubleType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_DOUBLE, 4)
_IVEC = ir.VectorType(_I32, 4)


def _contract(instruction):
    instruction.flags.append("contract")
    return instruction


def _splat(builder, value):
    vector = ir.Constant(_VEC, ir.Undefined)
    for lane in range(4):
        vector = builder.insert_element(vector, value, ir.Constant(_I32, lane))
    return vector


def _shuffle(builder, a, b, lanes):
    return builder.shuffle_vector(a, b, ir.Constant(_IVEC, lanes))


def _max(builder, a, floor):
    """numba's max(a, floor) for floats: floor if floor > a else a."""
    return builder.select(builder.fcmp_ordered(">", floor, a), floor, a)


def _min(builder, a, ceiling):
    """numba's min(a, ceiling) for floats: ceiling if ceiling < a else a."""
    return builder.select(builder.fcmp_ordered("<", ceiling, a), ceiling, a)


def _codegen(unit_clamp: bool):
    def codegen(context, builder, signature, args):
        table, x, out, j, low, inv_h, top = args
        table = context.make_array(signature.args[0])(context, builder, table)
        x = context.make_array(signature.args[1])(context, builder, x)
        out = context.make_array(signature.args[2])(context, builder, out)
        vec_ptr = _VEC.as_pointer()
        xs = builder.load(builder.bitcast(builder.gep(x.data, [j]), vec_ptr), align=8)
        # t = min(max((x - low) * inv_h, 0), top); k = int(t); f = t - k
        t = _contract(builder.fmul(_contract(builder.fsub(xs, _splat(builder, low))),
                                   _splat(builder, inv_h)))
        zero = ir.Constant(_VEC, [0.0] * 4)
        t = _min(builder, _max(builder, t, zero), _splat(builder, top))
        k = builder.fptosi(t, _IVEC)
        f = _contract(builder.fsub(t, builder.sitofp(k, _VEC)))
        rows = []
        for lane in range(4):
            row = builder.sext(builder.extract_element(k, ir.Constant(_I32, lane)), _I64)
            pointer = builder.gep(table.data, [builder.mul(row, ir.Constant(_I64, 4))])
            rows.append(builder.load(builder.bitcast(pointer, vec_ptr), align=8))
        # transpose the four rows (c0 c1 c2 c3) into the four coefficient vectors
        r0, r1, r2, r3 = rows
        lo01 = _shuffle(builder, r0, r1, [0, 4, 2, 6])
        hi01 = _shuffle(builder, r0, r1, [1, 5, 3, 7])
        lo23 = _shuffle(builder, r2, r3, [0, 4, 2, 6])
        hi23 = _shuffle(builder, r2, r3, [1, 5, 3, 7])
        c0 = _shuffle(builder, lo01, lo23, [0, 1, 4, 5])
        c2 = _shuffle(builder, lo01, lo23, [2, 3, 6, 7])
        c1 = _shuffle(builder, hi01, hi23, [0, 1, 4, 5])
        c3 = _shuffle(builder, hi01, hi23, [2, 3, 6, 7])
        # c0 + f (c1 + f (c2 + f c3)), each step an add of a product (FMA where contracted)
        g = _contract(builder.fadd(c2, _contract(builder.fmul(f, c3))))
        g = _contract(builder.fadd(c1, _contract(builder.fmul(f, g))))
        g = _contract(builder.fadd(c0, _contract(builder.fmul(f, g))))
        if unit_clamp:
            g = _min(builder, _max(builder, g, zero), ir.Constant(_VEC, [1.0] * 4))
        builder.store(g, builder.bitcast(builder.gep(out.data, [j]), vec_ptr), align=8)
        return context.get_dummy_value()
    return codegen


def _signature(table, x, out, j, low, inv_h, top):
    def vector(a):
        return isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" \
            and a.dtype == types.float64
    if not (isinstance(table, types.Array) and table.ndim == 2 and table.layout == "C"
            and table.dtype == types.float64):
        raise errors.TypingError("hermite4: table must be a C-contiguous float64 (K, 4) array")
    if not (vector(x) and vector(out)):
        raise errors.TypingError("hermite4: x and out must be C-contiguous float64 vectors")
    if not isinstance(j, types.Integer):
        raise errors.TypingError("hermite4: j must be an integer")
    return types.void(table, x, out, types.int64, types.float64, types.float64,
                      types.float64)


@intrinsic
def hermite4(typingctx, table, x, out, j, low, inv_h, top):
    """out[j:j+4] = the table's cubic at t = min(max((x[j:j+4] - low) inv_h, 0), top): the
    kernels' normal quantile (x a uniform, result a standard normal value)."""
    return _signature(table, x, out, j, low, inv_h, top), _codegen(unit_clamp=False)


@intrinsic
def hermite4_unit(typingctx, table, x, out, j, low, inv_h, top):
    """As :func:`hermite4`, the result clamped to [0, 1]: a loan's recovery rate (decimal of
    its claim) at the normal values x[j:j+4], as quantile.table_lookup."""
    return _signature(table, x, out, j, low, inv_h, top), _codegen(unit_clamp=True)
