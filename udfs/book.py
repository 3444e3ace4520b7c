"""The live-Excel book adapter: the macros' :class:`~npl_xl.workbook.book.Book` protocol
over an ``xlwings.Book``.

Everything that needs live Excel lives in ``udfs/``; the core never imports this module.
"""

from __future__ import annotations

from npl_xl.errors import InputTypeError
from npl_xl.workbook.book import RangeValues
from npl_xl.workbook.results import SheetSpec

__all__ = ["XlwingsBook"]


class XlwingsBook:
    """A live Excel workbook through xlwings (``xw.Book.caller()`` in the ribbon's macros).

    Only plain xlwings calls; not testable without Excel (the tests import it only).
    Chart titles and table deletion use the Windows COM objects (``chart.api[1]``,
    ``table.api``), as the add-in is Windows-only.
    """

    _CHART_TYPES = {"column": "column_clustered", "line": "line", "bar": "bar_clustered"}

    def __init__(self, book):
        self.book = book

    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def _find_table(self, name: str):
        for sheet in self.book.sheets:
            for table in sheet.tables:
                if table.name.lower() == name.lower():
                    return sheet, table
        return None, None

    def has_table(self, name: str) -> bool:
        return self._find_table(name)[1] is not None

    def read_table(self, name: str) -> RangeValues:
        sheet, table = self._find_table(name)
        if table is None:
            raise InputTypeError(f"the workbook has no Excel table named {name!r}", argument=name)
        return self._read_range(table.name, sheet.name, table.range)

    def read_name(self, name: str) -> RangeValues | None:
        if name not in [n.name for n in self.book.names]:
            return None
        rng = self.book.names[name].refers_to_range
        return self._read_range(name, rng.sheet.name, rng)

    @staticmethod
    def _read_range(name, sheet, rng) -> RangeValues:
        rows = rng.options(ndim=2).value
        return RangeValues(name, sheet, rng.address.split(":")[0].replace("$", ""), rows)

    def write_sheet(self, spec: SheetSpec) -> None:
        if spec.name in self.sheet_names():
            sheet = self.book.sheets[spec.name]
            for chart in list(sheet.charts):
                chart.delete()
            for table in list(sheet.tables):
                table.api.Delete()  # the ListObject (Windows COM); its cells are cleared next
            sheet.clear()
        else:
            sheet = self.book.sheets.add(spec.name, after=self.book.sheets[-1])
        sheet.range("A1").value = spec.title
        sheet.range("A1").font.bold = True
        for k, note in enumerate(spec.notes):
            sheet.range((2 + k, 1)).value = note
        for block in spec.blocks:
            header_row, col0 = spec.layout()[block.name]
            columns = [str(c) for c in block.frame.columns]
            rows = [[_excel_value(v) for v in r] for r in block.frame.itertuples(index=False)]
            sheet.range((header_row, col0 + 1)).value = block.title
            sheet.range((header_row, col0 + 1)).font.bold = True
            top = sheet.range((header_row + 1, col0 + 1))
            block_range = top.resize(1 + max(1, len(rows)), len(columns))
            block_range.value = [columns] + (rows or [[None] * len(columns)])
            if block.table:
                sheet.tables.add(source=block_range, name=block.name)
            for j, column in enumerate(columns):
                code = block.format_of(column)
                if code and rows:
                    top.offset(1, j).resize(len(rows), 1).number_format = code
            for (i, column), target in block.links.items():
                cell = top.offset(1 + i, columns.index(column))
                cell.add_hyperlink(f"#{target}", str(cell.value))
            if block.color_scale and rows:
                cols = [columns.index(str(c)) for c in block.color_scale]
                heat = top.offset(1, min(cols)).resize(len(rows), max(cols) - min(cols) + 1)
                heat.api.FormatConditions.AddColorScale(3)  # Windows COM: red-yellow-green
            if block.row_formats:
                for i, code in enumerate(block.row_formats):
                    if code:
                        top.offset(1 + i, 1).number_format = code
        for chart_spec in spec.charts:
            self._add_chart(sheet, spec, chart_spec)
        sheet.autofit("columns")

    def _add_chart(self, sheet, spec: SheetSpec, chart_spec) -> None:
        anchor = sheet.range(chart_spec.anchor)
        chart = sheet.charts.add(anchor.left + chart_spec.offset[0], anchor.top + chart_spec.offset[1],
                                 *chart_spec.size)
        chart.chart_type = self._CHART_TYPES[chart_spec.kind]
        def column(first, col, last):  # 0-based locate() -> 1-based xlwings cells
            return sheet.range((first + 1, col + 1), (last + 1, col + 1)).address

        parts = [column(*spec.locate(chart_spec.block, chart_spec.categories))]
        parts += [column(*spec.locate(s.block, s.values)) for s in chart_spec.series]
        chart.set_source_data(sheet.range(",".join(parts)))
        chart.api[1].HasTitle = True
        chart.api[1].ChartTitle.Text = chart_spec.title

    def mark_cells(self, sheet: str, cells: list[str]) -> None:
        target = self.book.sheets[sheet]
        for cell in cells:
            target.range(cell).color = (255, 199, 206)

    def set_status(self, text: str | None) -> None:
        self.book.app.status_bar = text if text else False

    def progress(self, done: int, total: int) -> None:
        if total > 0:
            self.set_status(f"npl-xl: simulating… {done / total:.0%}")
