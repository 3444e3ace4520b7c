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

Requirements: tables C-contiguous float64 arrays and vectors C-contiguous float64 (checked
when a kernel is compiled); the tables' rows of 4 coefficients and 0 <= j, j + 3 < the
vectors' lengths are assumed, not checked (the callers' tables are built so and their
loops stop 3 short of the end).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils, errors
from numba.extending import intrinsic

__all__ = ["normals4", "rates4_sum", "rates4_difference"]

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


def _load4(builder, context, array_type, array, j):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.load(builder.bitcast(builder.gep(data, [j]), _VEC.as_pointer()), align=8)


def _store4(builder, context, array_type, array, j, value):
    data = context.make_array(array_type)(context, builder, array).data
    builder.store(value, builder.bitcast(builder.gep(data, [j]), _VEC.as_pointer()), align=8)


def _hermite(builder, context, table_type, table, xs, low, inv_h, top, unit_clamp):
    """The four lookups at xs: t = min(max((x - low) inv_h, 0), top), k = int(t),
    f = t - k, c0 + f (c1 + f (c2 + f c3)) from row k (clamped to [0, 1] if unit_clamp)."""
    table = context.make_array(table_type)(context, builder, table)
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
        rows.append(builder.load(builder.bitcast(pointer, _VEC.as_pointer()), align=8))
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
    return g


def _is_table(a):
    return isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" \
        and a.dtype == types.float64


def _is_vector(a):
    return isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" \
        and a.dtype == types.float64


def _check(name, table, vectors):
    if not _is_table(table):
        raise errors.TypingError(f"{name}: the table must be a C-contiguous float64 (K, 4) array")
    if not all(_is_vector(v) for v in vectors):
        raise errors.TypingError(f"{name}: the vectors must be C-contiguous float64")


_F = types.float64


@intrinsic
def normals4(typingctx, table, u, out, j, low, inv_h, top, tail_q):
    """out[j:j+4] = the normal table's cubic at t = min(max((u - low) inv_h, 0), top) (u
    uniforms, results standard normal values, as paths._table_ndtri); returns an int64
    whose bit ``lane`` is set where |u[j + lane] - 0.5| > tail_q (those lanes need the
    exact quantile)."""
    _check("normals4", table, (u, out))
    signature = types.int64(table, u, out, types.int64, _F, _F, _F, _F)

    def codegen(context, builder, sig, args):
        table_v, u_v, out_v, j_v, low_v, inv_h_v, top_v, tail_v = args
        us = _load4(builder, context, sig.args[1], u_v, j_v)
        g = _hermite(builder, context, sig.args[0], table_v, us, low_v, inv_h_v, top_v, False)
        _store4(builder, context, sig.args[2], out_v, j_v, g)
        fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]),
                                              "llvm.fabs.v4f64")
        distance = builder.call(fabs, [builder.fsub(us, ir.Constant(_VEC, [0.5] * 4))])
        over = builder.fcmp_ordered(">", distance, _splat(builder, tail_v))
        return builder.zext(builder.bitcast(over, ir.IntType(4)), _I64)
    return signature, codegen


def _rates4(name, difference):
    def typer(typingctx, table, a, b, out, j, low, inv_h, top):
        _check(name, table, (a, b, out))
        signature = types.void(table, a, b, out, types.int64, _F, _F, _F)

        def codegen(context, builder, sig, args):
            table_v, a_v, b_v, out_v, j_v, low_v, inv_h_v, top_v = args
            av = _load4(builder, context, sig.args[1], a_v, j_v)
            bv = _load4(builder, context, sig.args[2], b_v, j_v)
            zs = _contract(builder.fsub(av, bv) if difference else builder.fadd(av, bv))
            g = _hermite(builder, context, sig.args[0], table_v, zs, low_v, inv_h_v, top_v,
                         True)
            _store4(builder, context, sig.args[3], out_v, j_v, g)
            return context.get_dummy_value()
        return signature, codegen
    typer.__name__ = name
    return typer


rates4_sum = intrinsic(_rates4("rates4_sum", difference=False))
rates4_sum.__doc__ = """out[j:j+4] = a loan's recovery rates (decimal of its claim, in [0, 1]) at the normal
values z = a[j:j+4] + b[j:j+4], as quantile.table_lookup(table, a + b)."""
rates4_difference = intrinsic(_rates4("rates4_difference", difference=True))
rates4_difference.__doc__ = """As rates4_sum at z = a[j:j+4] - b[j:j+4] (the antithetic partner)."""
