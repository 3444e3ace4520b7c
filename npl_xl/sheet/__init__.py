"""The worksheet layer: one registry of worksheet functions, the cell-value converters, and the
declarations (``functions/``, one module per domain). Front ends (xlwings, the headless
recalculation, LibreOffice) serve what the registry declares; nothing here computes."""
