"""Drive a running soffice over UNO: run by LibreOffice's own Python, spoken to in JSON lines.

``python3 driver.py PIPE`` connects to the soffice listening on pipe ``PIPE`` and answers one
JSON request per line on stdin with one JSON line on stdout: ``{"ok": result}`` or
``{"error": message}``. The project's interpreter never needs ``uno`` (which exists only
for the office's Python, often another version): the installer and the tests use
:class:`npl_xl_calc.office.Driver`, which starts this script.

Requests are ``{"op": name, ...arguments}``; documents are referred to by the number
``load`` or ``new`` returned. Only the standard library and ``uno``.
"""

import json
import sys
import time
import traceback

import uno
import unohelper
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException
from com.sun.star.task import XInteractionHandler
from com.sun.star.ucb import XCommandEnvironment, XProgressHandler

EXTENSION_ID = "org.nplxl.calc"
OXT_NAME = "npl_xl_calc.oxt"
#: Calc's error numbers (formula/errorcodes.hxx) -> Excel's spelling.
ERRORS = {521: "#NULL!", 532: "#DIV/0!", 519: "#VALUE!", 524: "#REF!", 525: "#NAME?",
          503: "#NUM!", 0x7FFF: "#N/A"}


def _props(**values):
    out = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name, prop.Value = name, value
        out.append(prop)
    return tuple(out)


class Environment(unohelper.Base, XCommandEnvironment, XInteractionHandler, XProgressHandler):
    """Says yes to every question the extension manager asks (licence, replace)."""

    def getInteractionHandler(self):
        return self

    def getProgressHandler(self):
        return self

    def handle(self, request):
        approve = uno.getTypeByName("com.sun.star.task.XInteractionApprove")
        for continuation in request.getContinuations():
            try:
                if continuation.queryInterface(approve) is not None:
                    continuation.select()
                    return
            except Exception:
                continue

    def push(self, status):
        pass

    def update(self, status):
        pass

    def pop(self):
        pass


def cell_value(cell):
    """[formula, value]: value a float, a str, or {"error": "#NUM!"}."""
    formula = cell.getFormula()
    error = cell.getError()
    if error:
        return [formula, {"error": ERRORS.get(error, "Err:%d" % error)}]
    kind = cell.getType().value
    if kind == "FORMULA":
        if cell.FormulaResultType2 == 2:
            return [formula, cell.getString()]
        return [formula, cell.getValue()]
    if kind == "TEXT":
        return [formula, cell.getString()]
    if kind == "EMPTY":
        return [formula, None]
    return [formula, cell.getValue()]


class Driver:
    def __init__(self, pipe, timeout=60.0):
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctx = resolver.resolve(
                    "uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
                break
            except NoConnectException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.smgr = self.ctx.ServiceManager
        self.desktop = self.smgr.createInstanceWithContext("com.sun.star.frame.Desktop", self.ctx)
        self.docs = {}

    # -- extensions
    def _manager(self):
        return self.ctx.getValueByName("/singletons/com.sun.star.deployment.ExtensionManager")

    def op_extensions(self, repository="user"):
        found = self._manager().getDeployedExtensions(repository, None, Environment())
        return [p.getIdentifier().Value for p in found if p is not None]

    def op_remove_extension(self, repository="user"):
        if EXTENSION_ID not in self.op_extensions(repository):
            return False
        self._manager().removeExtension(EXTENSION_ID, OXT_NAME, repository, None, Environment())
        return True

    def op_add_extension(self, path, repository="user"):
        replaced = self.op_remove_extension(repository)
        self._manager().addExtension(uno.systemPathToFileUrl(path), (), repository, None,
                                     Environment())
        if EXTENSION_ID not in self.op_extensions(repository):
            raise RuntimeError("LibreOffice did not register %s" % path)
        return "upgraded" if replaced else "installed"

    # -- documents
    def _keep(self, doc):
        if doc is None:
            raise RuntimeError("LibreOffice could not open the document")
        key = len(self.docs) + 1
        self.docs[key] = doc
        return key

    def op_load(self, path, recalc=True):
        doc = self.desktop.loadComponentFromURL(uno.systemPathToFileUrl(path), "_blank", 0,
                                                _props(Hidden=True))
        key = self._keep(doc)
        self.settle()
        if recalc:
            doc.calculateAll()
        return key

    def settle(self):
        """Let the office handle its pending events (the OnLoad listeners) first."""
        toolkit = self.smgr.createInstanceWithContext("com.sun.star.awt.Toolkit", self.ctx)
        try:
            toolkit.processEventsToIdle()
        except Exception:
            time.sleep(0.5)

    def op_new(self):
        return self._keep(self.desktop.loadComponentFromURL("private:factory/scalc", "_blank",
                                                            0, _props(Hidden=True)))

    def op_close(self, doc):
        self.docs.pop(doc).close(True)

    def _sheet(self, doc, sheet):
        return self.docs[doc].Sheets.getByName(sheet)

    def op_sheets(self, doc):
        return list(self.docs[doc].Sheets.ElementNames)

    def op_cells(self, doc, addresses):
        """[formula, value] of each "Sheet!A1"."""
        out = []
        for address in addresses:
            sheet, _, cell = address.rpartition("!")
            out.append(cell_value(self._sheet(doc, sheet.strip("'")).getCellRangeByName(cell)))
        return out

    def op_used(self, doc, sheet):
        """Every non-empty cell of a sheet: {"A1": [formula, value]}."""
        target = self._sheet(doc, sheet)
        cursor = target.createCursor()
        cursor.gotoEndOfUsedArea(False)
        end = cursor.getRangeAddress()
        out = {}
        for r in range(end.EndRow + 1):
            for c in range(end.EndColumn + 1):
                cell = target.getCellByPosition(c, r)
                if cell.getType().value != "EMPTY":
                    out[cell.AbsoluteName.rsplit(".", 1)[1].replace("$", "")] = cell_value(cell)
        return out

    def op_formula(self, doc, sheet, where, formula, array=False):
        target = self._sheet(doc, sheet).getCellRangeByName(where)
        if array:
            target.setArrayFormula(formula)
        else:
            target.setFormula(formula)

    def op_fill(self, doc, sheet, where, formulas):
        """Formulas (a list of rows) into a range at once."""
        self._sheet(doc, sheet).getCellRangeByName(where).setFormulaArray(
            tuple(tuple(row) for row in formulas))

    def op_time_recalc(self, doc, repeat=3):
        """Seconds of each of ``repeat`` full recalculations (calculateAll)."""
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            self.docs[doc].calculateAll()
            times.append(time.perf_counter() - started)
        return times

    def op_store(self, doc, path, filter_name="Calc MS Excel 2007 XML"):
        self.docs[doc].storeToURL(uno.systemPathToFileUrl(path), _props(FilterName=filter_name))

    def op_save_as(self, doc, path, filter_name="Calc MS Excel 2007 XML"):
        """File > Save As (the document then lives at ``path``; OnSaveAsDone fires)."""
        self.docs[doc].storeAsURL(uno.systemPathToFileUrl(path), _props(FilterName=filter_name))

    def op_select(self, doc, sheet, where):
        model = self.docs[doc]
        controller = model.getCurrentController()
        target = self._sheet(doc, sheet)
        controller.setActiveSheet(target)
        controller.select(target.getCellRangeByName(where))

    def op_dispatch(self, doc, url):
        frame = self.docs[doc].getCurrentController().getFrame()
        helper = self.smgr.createInstanceWithContext("com.sun.star.frame.DispatchHelper", self.ctx)
        helper.executeDispatch(frame, url, "", 0, ())

    def op_charts(self, doc, sheet):
        """[name, title, number of series, chart type] of each chart on a sheet."""
        charts = self._sheet(doc, sheet).getCharts()
        out = []
        for name in charts.ElementNames:
            chart = charts.getByName(name).getEmbeddedObject()
            title = chart.getTitle().String if chart.HasMainTitle else ""
            series = []
            for system in chart.getFirstDiagram().getCoordinateSystems():
                for chart_type in system.getChartTypes():
                    series.extend(chart_type.getDataSeries())
            kind = chart.getDiagram().getDiagramType()
            out.append([name, title, len(series), kind])
        return out

    def op_database_ranges(self, doc):
        return list(self.docs[doc].DatabaseRanges.ElementNames)

    def op_function_description(self, name, locale="en"):
        """What the function wizard shows: (description, argument names) from the add-in."""
        descriptions = self.smgr.createInstanceWithContext(
            "com.sun.star.sheet.FunctionDescriptions", self.ctx)
        for k in range(descriptions.getCount()):
            entry = {p.Name: p.Value for p in descriptions.getByIndex(k)}
            if entry["Name"].upper() in (name.upper(), name.upper().rsplit(".", 1)[-1]):
                return {"description": entry["Description"], "category": entry["Category"],
                        "arguments": [a.Name for a in entry["Arguments"]],
                        "argument_help": [a.Description for a in entry["Arguments"]]}
        return None

    def op_terminate(self):
        try:
            self.desktop.terminate()
        except Exception:
            pass
        return True


def main(argv):
    driver = Driver(argv[1])
    sys.stdout.write(json.dumps({"ok": "ready"}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            answer = {"ok": getattr(driver, "op_" + op)(**request)}
        except Exception as exc:
            answer = {"error": "%s: %s" % (type(exc).__name__, exc),
                      "traceback": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if op == "terminate":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
