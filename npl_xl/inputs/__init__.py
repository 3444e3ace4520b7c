"""Inputs: what the workbook holds, read and checked.

Codes (provinces, stages, collateral types, defects) and their normaliser, the assumption
tables (packaged CSVs in ``data/``, overridable by the workbook's Assumptions sheet), the loan
tape reader and the Tranches/Settings parsers. Nothing here simulates or values.
"""
