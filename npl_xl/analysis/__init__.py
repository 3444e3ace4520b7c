"""Analyses built on the engine: bid pricing, stratification, AMC income-right modes, and the
structuring, sensitivity and surveillance analyses."""
