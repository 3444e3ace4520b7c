"""Headless recalculation of workbooks: formulas, NPL functions, cached values written back."""
