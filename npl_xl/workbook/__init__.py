"""Workbook files: the book protocol and its file adapter, output-sheet specs, charts, and the
zip-level graft that writes results into a copy of a user's package."""
