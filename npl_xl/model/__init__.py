"""Model: loan-level and closed-form maths.

Beta recoveries, collateral (auction ladder, comparables, net recovery), judicial timelines,
loan valuation and the idealized-EL rating table. Pure functions of their arguments, units in
every docstring; the Monte Carlo engine builds on them.
"""
