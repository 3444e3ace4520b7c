"""npl-xl in LibreOffice Calc: the add-in functions and the NPL menu's commands.

This file runs inside soffice, in LibreOffice's own Python, which may be another version
than the project's and has no numpy or numba. It therefore computes nothing and imports
nothing of npl-xl: every worksheet call and every menu command is sent over a pipe to a
worker process of the project's interpreter (``python -m npl_xl_calc.worker``, named in
worker.json beside this file), which calls the registry or the macros of npl_xl.macros.
A crash or a hang of the numerical code therefore cannot take Calc down; a worker that
died is started again on the next call.

Two components:

- NplFunctionsImpl (service com.sun.star.sheet.AddIn): one method per worksheet function
  (generated from functions.json), plus XAddIn's function-wizard texts, in English with
  the registry's Chinese one-liner, and XCompatibilityNames (the short Excel name of each
  function; Calc 7.4 does not use it for .xlsx, hence the document events below).
- NplDocumentJob and a document-event listener: after a load, formulas calling npl-xl
  functions by their short names are entered again under the long names Calc knows; after
  a save as .xlsx, the file gets the short names back (npl_calc_names.py).
- NplCommands: the protocol handler of ``org.nplxl.calc:<command>``, the NPL menu and
  toolbar: runs the macro of that name in a second worker (so a long Run Simulation never
  blocks the worksheet functions' worker), answering the worker's requests on the open
  document (read a table, write a sheet, draw a chart, set the status bar); and Explain
  Error, which recomputes the selected cell and shows the message of its npl-xl error.
"""

import json
import os
import subprocess
import tempfile
import threading
import time
import traceback

import uno
import unohelper
from com.sun.star.frame import XDispatch, XDispatchProvider
from com.sun.star.lang import Locale, XInitialization, XLocalizable, XServiceInfo, XServiceName
from com.sun.star.sheet import XAddIn, XCompatibilityNames
from com.sun.star.task import XJob
from com.sun.star.document import XDocumentEventListener

import npl_calc_names as names
import npl_calc_wire as wire
from org.nplxl.calc import XNplFunctions

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "functions.json"), encoding="utf-8") as _handle:
    SPEC = json.load(_handle)
with open(os.path.join(HERE, "worker.json"), encoding="utf-8") as _handle:
    WORKER = json.load(_handle)
SERVICE = SPEC["service"]
IMPLEMENTATION = WORKER["implementation"]
COMMANDS = WORKER["commands_implementation"]
JOB = WORKER["job_implementation"]
PROTOCOL = WORKER["protocol"]
FUNCTIONS = {f["name"]: f for f in SPEC["functions"]}
ARRAY = {name for name, f in FUNCTIONS.items() if f["array"]}


def log(text):
    """One line to the log file named by NPL_XL_CALC_LOG (nothing when unset)."""
    path = os.environ.get("NPL_XL_CALC_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text.replace("\n", " | ") + "\n")


class WorkerGone(Exception):
    pass


class Worker:
    """One worker process and its pipe; started on first use, restarted if it died."""

    def __init__(self, role):
        self.role = role
        self.process = None
        self.lock = threading.RLock()

    def _start(self):
        env = dict(os.environ)
        for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"):  # soffice's own Python's
            env.pop(key, None)
        env.update(WORKER.get("env", {}))
        stderr_path = os.environ.get("NPL_XL_CALC_WORKER_LOG") or os.path.join(
            tempfile.gettempdir(), "npl-xl-calc-worker.log")
        with open(stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [WORKER["python"], "-P", "-m", "npl_xl_calc.worker", self.role],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
                cwd=HERE, close_fds=True)  # -P, cwd: no stray module shadows the stdlib

    def stop(self):
        with self.lock:
            if self.process is not None:
                try:
                    self.process.stdin.close()
                    self.process.wait(timeout=5)
                except Exception:
                    self.process.kill()
                self.process = None

    def request(self, message, callback=None):
        """Send ``message``; answer the worker's ("book", op, args) requests with
        ``callback(op, args)`` until its answer comes; return the answer."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            try:
                wire.send(self.process.stdin, message)
                while True:
                    answer = wire.receive(self.process.stdout)
                    if answer[0] != "book":
                        return answer
                    try:
                        reply = ("ok", callback(answer[1], answer[2]))
                    except Exception as exc:
                        reply = ("fail", "%s: %s" % (type(exc).__name__, exc))
                    wire.send(self.process.stdin, reply)
            except (EOFError, OSError, ValueError) as exc:
                code = self.process.poll() if self.process else None
                self.process = None
                raise WorkerGone("the npl-xl worker (%s) stopped (%s, exit %s); see %s"
                                 % (WORKER["python"], exc, code, "npl-xl-calc-worker.log"))


FUNCTION_WORKER = Worker("functions")
MACRO_WORKER = Worker("macros")

#: Messages of the error results computed while Explain Error is recomputing a cell.
_RECORDING = []
_RECORD = [False]


def _from_calc(value):
    """A Calc argument as the registry expects it: UNO void -> None; ranges stay tuples
    of rows ("" for a blank cell inside a range)."""
    if isinstance(value, uno.Any):
        value = value.value
    return value


def _to_calc_cell(value):
    if wire.is_error_value(value):
        if _RECORD[0]:
            _RECORDING.append((value[wire.ERROR_KEY], value.get("message", "")))
        return wire.calc_error(value[wire.ERROR_KEY])
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if value is None:
        return ""
    if isinstance(value, int):
        return float(value)
    return value


def evaluate(name, args):
    """Compute worksheet function ``name`` in the worker: Calc's values in, Calc's out."""
    raw = tuple(_from_calc(a) for a in args)
    try:
        answer = FUNCTION_WORKER.request(("call", name, raw))
        result = answer[1] if answer[0] == "result" else wire.error_value("#VALUE!", str(answer))
    except WorkerGone as exc:
        log(str(exc))
        result = wire.error_value("#VALUE!", str(exc))
    if name in ARRAY:
        rows = result if isinstance(result, list) else [[result]]
        return tuple(tuple(_to_calc_cell(c) for c in row) for row in rows)
    if isinstance(result, list):  # an array where a scalar was declared: its first cell
        result = result[0][0] if result and result[0] else ""
    return _to_calc_cell(result)


def _method(name):
    def method(self, options, *args):
        try:
            return evaluate(name, args)
        except Exception:  # a defect here: logged, and the cell shows #VALUE!
            log("call\t%s\tcrashed\t%s" % (name, traceback.format_exc()))
            raise

    method.__name__ = name
    return method


class NplFunctions(unohelper.Base, XNplFunctions, XAddIn, XCompatibilityNames, XServiceName,
                   XServiceInfo, XLocalizable):
    """The worksheet functions (one generated method each) and their wizard texts."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.locale = Locale("en", "US", "")
        listen_to_documents(ctx)

    # XServiceName, XServiceInfo
    def getServiceName(self):
        return SERVICE

    def getImplementationName(self):
        return IMPLEMENTATION

    def supportsService(self, name):
        return name in self.getSupportedServiceNames()

    def getSupportedServiceNames(self):
        return (SERVICE, "com.sun.star.sheet.AddIn")

    # XLocalizable
    def setLocale(self, locale):
        self.locale = locale

    def getLocale(self):
        return self.locale

    # XAddIn
    def getProgrammaticFuntionName(self, display_name):  # sic: the UNO API's spelling
        upper = display_name.upper()
        return upper if upper in FUNCTIONS else ""

    def getDisplayFunctionName(self, name):
        return name if name in FUNCTIONS else ""

    def getFunctionDescription(self, name):
        spec = FUNCTIONS.get(name)
        if spec is None:
            return ""
        chinese = spec["zh"]
        if self.locale.Language == "zh" and chinese:
            return chinese + "\n" + spec["doc"]
        return spec["doc"] + ("\n" + chinese if chinese else "")

    def _arg(self, name, index):
        spec = FUNCTIONS.get(name)
        if spec is None or not 1 <= index <= len(spec["args"]):  # 0 is the hidden argument
            return None
        return spec["args"][index - 1]

    def getDisplayArgumentName(self, name, index):
        arg = self._arg(name, index)
        return "" if arg is None else arg["name"]

    def getArgumentDescription(self, name, index):
        arg = self._arg(name, index)
        if arg is None:
            return ""
        return arg["doc"] + ("" if arg["required"] else " (optional)")

    def getProgrammaticCategoryName(self, name):
        return "Add-In"

    def getDisplayCategoryName(self, name):
        return FUNCTIONS.get(name, {}).get("category", "NPL")

    # XCompatibilityNames: the name Excel knows, read from and written to .xlsx/.xls
    def getCompatibilityNames(self, name):
        if name not in FUNCTIONS:
            return ()
        names = []
        for language, country in (("en", "US"), ("en", ""), ("zh", "CN"), ("", "")):
            item = uno.createUnoStruct("com.sun.star.sheet.LocalizedName")
            item.Locale = Locale(language, country, "")
            item.Name = name
            names.append(item)
        return tuple(names)


for _name in FUNCTIONS:
    setattr(NplFunctions, _name, _method(_name))


# --- the document, for the macros ---------------------------------------------------------

def _cell_name(row, col):
    """1-based (row, column) -> "B3"."""
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return "%s%d" % (letters, row)


def _rows(data):
    return [[None if v == "" else v for v in row] for row in data]


def _calc_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float) and value != value:
        return ""
    return value


class CalcDocument:
    """What the worker's book adapter may ask of the open document (one method per op)."""

    BAD_CELL = 0xFFC7CE
    PX = 26.46  #: 1/100 mm per pixel at 96 dpi

    def __init__(self, model, frame):
        self.model = model
        self.frame = frame
        self.indicator = None

    def handle(self, op, args):
        return getattr(self, "op_" + op)(*args)

    def _range(self, address):
        sheet = self.model.Sheets.getByIndex(address.Sheet)
        cells = sheet.getCellRangeByPosition(address.StartColumn, address.StartRow,
                                             address.EndColumn, address.EndRow)
        return sheet, cells

    def _located(self, name, address):
        sheet, cells = self._range(address)
        return {"name": name, "sheet": sheet.Name,
                "top_left": _cell_name(address.StartRow + 1, address.StartColumn + 1),
                "rows": _rows(cells.getDataArray())}

    def op_sheet_names(self):
        return list(self.model.Sheets.ElementNames)

    def op_table(self, name):
        """An xlsx table arrives in Calc as a database range of the same name."""
        ranges = self.model.DatabaseRanges
        for candidate in ranges.ElementNames:
            if candidate.lower() == name.lower():
                return self._located(candidate, ranges.getByName(candidate).DataArea)
        return None

    def op_name(self, name):
        names = self.model.NamedRanges
        for candidate in names.ElementNames:
            if candidate.lower() == name.lower():
                cells = names.getByName(candidate).getReferredCells()
                if cells is None:
                    return {"error": names.getByName(candidate).getContent()}
                return self._located(candidate, cells.getRangeAddress())
        return None

    def op_mark(self, sheet_name, cells):
        sheet = self.model.Sheets.getByName(sheet_name)
        for cell in cells:
            sheet.getCellRangeByName(cell).CellBackColor = self.BAD_CELL

    def op_status(self, text):
        if not text:
            if self.indicator is not None:
                self.indicator.end()
                self.indicator = None
            return
        if self.indicator is None and self.frame is not None:
            self.indicator = self.frame.createStatusIndicator()
            self.indicator.start(text, 1000)
        elif self.indicator is not None:
            self.indicator.setText(text)
        log("status\t" + text)

    def op_progress(self, done, total):
        if self.indicator is None:
            self.op_status("npl-xl: simulating…")
        if self.indicator is not None and total > 0:
            self.indicator.setValue(int(1000 * min(done, total) / total))
            self.indicator.setText("npl-xl: simulating… %d%%" % int(100 * done / total))

    def _format_key(self, code):
        formats = self.model.NumberFormats
        locale = Locale("en", "US", "")
        key = formats.queryKey(code, locale, False)
        if key == -1:
            key = formats.addNew(code, locale)
        return key

    def op_write_sheet(self, plan):
        """Replace (or add) an output sheet: title, notes, blocks, tables, charts."""
        sheets = self.model.Sheets
        name = plan["name"]
        if sheets.hasByName(name):
            sheet = sheets.getByName(name)
            charts = sheet.getCharts()
            for chart in charts.ElementNames:
                charts.removeByName(chart)
            shapes = sheet.getDrawPage()  # pictures and any other drawing left there
            while shapes.getCount():
                shapes.remove(shapes.getByIndex(0))
            sheet.clearContents(1023)  # every kind of content, formats included
        else:
            sheets.insertNewByName(name, sheets.Count)
            sheet = sheets.getByName(name)
        index = list(sheets.ElementNames).index(name)
        bold = 150.0  # com.sun.star.awt.FontWeight.BOLD
        title = sheet.getCellByPosition(0, 0)
        title.setString(plan["title"])
        title.CharWeight = bold
        title.CharHeight = 13.0
        for k, note in enumerate(plan["notes"]):
            sheet.getCellByPosition(0, 1 + k).setString(note)
        ranges = self.model.DatabaseRanges
        for block in plan["blocks"]:
            row, col = block["row"], block["col"]
            caption = sheet.getCellByPosition(col, row - 1)
            caption.setString(block["title"])
            caption.CharWeight = bold
            width = len(block["columns"])
            data = [list(block["columns"])] + [[_calc_value(v) for v in r] for r in block["rows"]]
            if len(data) == 1:
                data.append([""] * width)
            cells = sheet.getCellRangeByPosition(col, row, col + width - 1, row + len(data) - 1)
            cells.setDataArray(tuple(tuple(r) for r in data))
            sheet.getCellRangeByPosition(col, row, col + width - 1, row).CharWeight = bold
            n = len(block["rows"])
            for j, code in block["formats"].items():
                if code and n:
                    sheet.getCellRangeByPosition(col + int(j), row + 1, col + int(j),
                                                 row + n).NumberFormat = self._format_key(code)
            for i, code in enumerate(block.get("row_formats") or []):
                if code and width > 1:
                    sheet.getCellByPosition(col + 1, row + 1 + i).NumberFormat = \
                        self._format_key(code)
            for i, j, target, text in block["links"]:
                sheet.getCellByPosition(col + j, row + 1 + i).setFormula(
                    '=HYPERLINK("#%s";"%s")' % (target.replace('"', '""'), text.replace('"', '""')))
            if block["table"]:
                if ranges.hasByName(block["name"]):
                    ranges.removeByName(block["name"])
                ranges.addNewByName(block["name"], cells.getRangeAddress())
        for k, chart in enumerate(plan["charts"]):
            self._chart(sheet, index, "%s_chart%d" % (name, k + 1), chart)
        used = sheet.createCursor()
        used.gotoEndOfUsedArea(False)
        columns = sheet.getColumns()
        for c in range(used.getRangeAddress().EndColumn + 1):
            columns.getByIndex(c).OptimalWidth = True

    def _chart(self, sheet, index, name, chart):
        addresses = []
        for first, col, last in [chart["categories"]] + [s[1:] for s in chart["series"]]:
            address = uno.createUnoStruct("com.sun.star.table.CellRangeAddress")
            address.Sheet, address.StartColumn, address.EndColumn = index, col, col
            address.StartRow, address.EndRow = first - 1, last  # with the header row
            addresses.append(address)
        anchor = sheet.getCellRangeByName(chart["anchor"]).Position
        rect = uno.createUnoStruct("com.sun.star.awt.Rectangle")
        rect.X = int(anchor.X + chart["offset"][0] * self.PX)
        rect.Y = int(anchor.Y + chart["offset"][1] * self.PX)
        rect.Width, rect.Height = (int(v * self.PX) for v in chart["size"])
        charts = sheet.getCharts()
        charts.addNewByName(name, rect, tuple(addresses), True, True)
        document = charts.getByName(name).getEmbeddedObject()
        if chart["kind"] == "line":
            document.setDiagram(document.createInstance("com.sun.star.chart.LineDiagram"))
        document.HasMainTitle = True
        document.getTitle().String = chart["title"]
        diagram = document.getDiagram()
        if chart.get("x_title"):
            diagram.HasXAxisTitle = True
            diagram.getXAxisTitle().String = chart["x_title"]
        if chart.get("y_title"):
            diagram.HasYAxisTitle = True
            diagram.getYAxisTitle().String = chart["y_title"]
        self._series_names(document, [s[0] for s in chart["series"]])

    @staticmethod
    def _series_names(document, names):
        """Label each series with the spec's name instead of the header cell's text."""
        try:
            provider = document.getDataProvider()
            diagram = document.getFirstDiagram()
            series = []
            for system in diagram.getCoordinateSystems():
                for chart_type in system.getChartTypes():
                    series.extend(chart_type.getDataSeries())
            for item, label in zip(series, names):
                for sequence in item.getDataSequences():
                    if sequence.getLabel() is not None:
                        sequence.setLabel(provider.createDataSequenceByRangeRepresentation(
                            '"%s"' % label.replace('"', "'")))
        except Exception as exc:  # the header cell's text stays: still a readable chart
            log("chart series names kept: %s" % exc)


# --- Explain Error ------------------------------------------------------------------------

def _formula_cell(model, frame):
    """(sheet, range to re-enter, formula, is array, address) of the selected cell."""
    selection = frame.getController().getSelection()
    address = selection.getRangeAddress()
    sheet = model.Sheets.getByIndex(address.Sheet)
    cell = sheet.getCellByPosition(address.StartColumn, address.StartRow)
    label = "%s!%s" % (sheet.Name, _cell_name(address.StartRow + 1, address.StartColumn + 1))
    cursor = sheet.createCursorByRange(cell)
    try:
        cursor.collapseToCurrentArray()
        formula = cursor.getArrayFormula()
        if formula:
            return sheet, cursor, formula, True, label, cell
    except Exception:
        pass
    return sheet, cell, cell.getFormula(), False, label, cell


def explain(model, frame):
    """The message behind the selected cell's error: the cell is computed again (its
    formula re-entered, undo and the modified flag left as they were) and the messages of
    the npl-xl error results met on the way are shown."""
    sheet, target, formula, is_array, label, cell = _formula_cell(model, frame)
    if cell.getError() == 0:
        return "%s holds no error value." % label
    code = wire.calc_error_code(cell.getError()) or "Err:%d" % cell.getError()
    modified = model.isModified()
    undo = model.getUndoManager()
    undo.lock()
    del _RECORDING[:]
    _RECORD[0] = True
    try:
        if is_array:
            target.setArrayFormula(formula)
        else:
            target.setFormula(formula)
        model.calculate()
    finally:
        _RECORD[0] = False
        undo.unlock()
        model.setModified(modified)
    messages = []
    for item in _RECORDING:
        if item not in messages:
            messages.append(item)
    if not messages:
        return ("%s: %s comes from its arguments or from a function that is not npl-xl's "
                "(no npl-xl function in %s failed)." % (label, code, formula))
    return "%s: " % label + "; ".join("%s %s" % item for item in messages)


def show(ctx, frame, text):
    """A message box, except when NPL_XL_CALC_QUIET is set (headless runs, tests)."""
    log("message\t" + text)
    if os.environ.get("NPL_XL_CALC_QUIET"):
        return
    try:
        toolkit = ctx.ServiceManager.createInstanceWithContext("com.sun.star.awt.Toolkit", ctx)
        box_type = uno.Enum("com.sun.star.awt.MessageBoxType", "INFOBOX")
        box = toolkit.createMessageBox(frame.getContainerWindow(), box_type, 1, "npl-xl", text)
        box.execute()
    except Exception as exc:
        log("no message box: %s" % exc)


def run_command(ctx, frame, command):
    model = frame.getController().getModel()
    if command == WORKER["explain_error"]:
        show(ctx, frame, explain(model, frame))
        return
    document = CalcDocument(model, frame)
    started = time.time()
    model.lockControllers()
    model.enableAutomaticCalculation(False)
    try:
        answer = MACRO_WORKER.request(("macro", command), callback=document.handle)
    except WorkerGone as exc:
        answer = ("crashed", str(exc))
    finally:
        model.enableAutomaticCalculation(True)
        model.unlockControllers()
        try:
            document.op_status(None)
        except Exception:
            pass
    log("command\t%s\t%s\t%.2f s\t%s" % (command, answer[0], time.time() - started,
                                          answer[1] if len(answer) > 1 else ""))
    if answer[0] != "done":
        show(ctx, frame, answer[1])


class NplCommands(unohelper.Base, XDispatchProvider, XDispatch, XInitialization, XServiceInfo):
    """Protocol handler of org.nplxl.calc:<command>: the NPL menu and toolbar."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.frame = None

    def initialize(self, args):
        if args:
            self.frame = args[0]

    def getImplementationName(self):
        return COMMANDS

    def supportsService(self, name):
        return name in self.getSupportedServiceNames()

    def getSupportedServiceNames(self):
        return (COMMANDS, "com.sun.star.frame.ProtocolHandler")

    def queryDispatch(self, url, target, flags):
        return self if url.Complete.startswith(PROTOCOL) else None

    def queryDispatches(self, requests):
        return tuple(self.queryDispatch(r.FeatureURL, r.FrameName, r.SearchFlags)
                     for r in requests)

    def dispatch(self, url, args):
        command = url.Complete[len(PROTOCOL):]
        try:
            run_command(self.ctx, self.frame, command)
        except Exception:
            log("command\t%s\tcrashed\t%s" % (command, traceback.format_exc()))
            raise

    def addStatusListener(self, listener, url):
        pass

    def removeStatusListener(self, listener, url):
        pass


# --- xlsx: short names in, short names out ---------------------------------------------------
#
# Calc 7.4 knows an add-in function in an xlsx only under its programmatic name
# (ORG.NPLXL.CALC.NPLFUNCTIONS.NPL_BETA_PARAMS) and writes that name back, which Excel does
# not know. On load, formulas that call an npl-xl function by its short name (Calc keeps
# them as unknown names, #NAME?) are entered again with the long name; after a save in
# .xlsx/.xlsm, the file's formulas get their short names back.

LONG_PREFIX = names.long_prefix(SERVICE)
_FORMULA_CELLS = 16  # com.sun.star.sheet.CellFlags.FORMULA


def _long_names(formula):
    return names.long_names(formula, LONG_PREFIX, FUNCTIONS)


def restore_long_names(model):
    """Enter again every formula that calls an npl-xl function by its short name; returns
    the number of formulas (array formulas once) re-entered."""
    if not model.supportsService("com.sun.star.sheet.SpreadsheetDocument"):
        return 0
    count = 0
    model.lockControllers()
    try:
        for sheet in model.Sheets:
            ranges = sheet.queryContentCells(_FORMULA_CELLS)
            for address in ranges.getRangeAddresses():
                for row in range(address.StartRow, address.EndRow + 1):
                    for col in range(address.StartColumn, address.EndColumn + 1):
                        count += _restore_cell(sheet, sheet.getCellByPosition(col, row))
    finally:
        model.unlockControllers()
    if count:
        model.calculate()
    return count


def _restore_cell(sheet, cell):
    formula = cell.getFormula()
    if "NPL_" not in formula.upper() or LONG_PREFIX in formula.upper():
        return 0
    if formula.startswith("{") and formula.endswith("}"):  # a cell of an array formula
        cursor = sheet.createCursorByRange(cell)
        cursor.collapseToCurrentArray()
        origin = cursor.getRangeAddress()
        here = cell.getCellAddress()
        if (here.Row, here.Column) != (origin.StartRow, origin.StartColumn):
            return 0  # re-entered once, from its top-left cell
        cursor.setArrayFormula(_long_names(formula[1:-1]))
        return 1
    fixed = _long_names(formula)
    if fixed == formula:
        return 0
    cell.setFormula(fixed)
    return 1


def short_names_in_xlsx(path):
    return names.short_names_in_xlsx(path, LONG_PREFIX)


class NplDocumentJob(unohelper.Base, XJob, XServiceInfo):
    """Job on the document events OnLoad (long names in) and OnSaveDone/OnSaveAsDone
    (short names back into a saved xlsx); registered by Jobs.xcu."""

    def __init__(self, ctx):
        self.ctx = ctx

    def getImplementationName(self):
        return JOB

    def supportsService(self, name):
        return name in self.getSupportedServiceNames()

    def getSupportedServiceNames(self):
        return (JOB, "com.sun.star.task.Job")

    def execute(self, arguments):
        environment = {}
        for item in arguments:
            if item.Name == "Environment":
                environment = {v.Name: v.Value for v in item.Value}
        on_document_event(environment.get("EventName", ""), environment.get("Model"))
        return ()


def on_document_event(event, model):
    """Long names after a load, short names in the file after a save as xlsx."""
    try:
        if model is None or not hasattr(model, "supportsService"):
            return
        if event in ("OnLoadFinished", "OnLoad"):
            count = restore_long_names(model)
            if count:
                log("load\t%s\t%d formulas re-entered" % (model.getURL(), count))
        elif event in ("OnSaveDone", "OnSaveAsDone"):
            url = model.getURL()
            if url.lower().endswith((".xlsx", ".xlsm")):
                path = uno.fileUrlToSystemPath(url)
                log("save\t%s\tshort names restored: %s" % (path, short_names_in_xlsx(path)))
    except Exception:
        log("document event\t%s\tcrashed\t%s" % (event, traceback.format_exc()))


class DocumentEvents(unohelper.Base, XDocumentEventListener):
    """Every document's events, from the moment the add-in is first created: Calc creates
    it while reading the first formula with an unknown name, so the OnLoad of that very
    document arrives here (also for hidden documents, which jobs do not see)."""

    def documentEventOccured(self, event):  # sic: the UNO API's spelling
        on_document_event(event.EventName, event.Source)

    def disposing(self, source):
        pass


_LISTENING = []


def listen_to_documents(ctx):
    if _LISTENING:
        return
    try:
        broadcaster = ctx.getValueByName("/singletons/com.sun.star.frame.theGlobalEventBroadcaster")
        listener = DocumentEvents()
        broadcaster.addDocumentEventListener(listener)
        _LISTENING.append(listener)
    except Exception:
        log("no document events: %s" % traceback.format_exc())


g_ImplementationHelper = unohelper.ImplementationHelper()
g_ImplementationHelper.addImplementation(NplFunctions, IMPLEMENTATION,
                                         (SERVICE, "com.sun.star.sheet.AddIn"))
g_ImplementationHelper.addImplementation(NplCommands, COMMANDS,
                                         (COMMANDS, "com.sun.star.frame.ProtocolHandler"))
g_ImplementationHelper.addImplementation(NplDocumentJob, JOB, (JOB, "com.sun.star.task.Job"))
