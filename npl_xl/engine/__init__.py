"""The Monte Carlo engine: correlated recoveries, timing, waterfall, tranche figures."""
