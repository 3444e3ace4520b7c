Attribute VB_Name = "NplRibbon"
' Ribbon callbacks of the npl-xl add-in.
'
' Each button of customUI14.xml calls one Sub here. The Sub only hands over to Python:
' RunPython (from the xlwings VBA module of this add-in) imports npl_xl_udfs.ribbon and calls
' the macro of the same name, which reads and writes the ACTIVE workbook (xw.books.active;
' inside an add-in xw.Book.caller() would be the add-in itself). Every computation and every
' message shown to the user is Python's; keep this module free of logic.
Option Explicit

Public Sub OnRunSimulation(control As IRibbonControl)
    RunNplMacro "run_simulation"
End Sub

Public Sub OnFitRecoveries(control As IRibbonControl)
    RunNplMacro "fit_recoveries"
End Sub

Public Sub OnValidateTape(control As IRibbonControl)
    RunNplMacro "validate_tape"
End Sub

Public Sub OnStratifyPool(control As IRibbonControl)
    RunNplMacro "stratify_pool"
End Sub

Public Sub OnPriceBid(control As IRibbonControl)
    RunNplMacro "price_bid"
End Sub

Public Sub OnClearResults(control As IRibbonControl)
    RunNplMacro "clear_results"
End Sub

Public Sub OnSurveillanceReport(control As IRibbonControl)
    RunNplMacro "surveillance_report"
End Sub

Public Sub OnExplainError(control As IRibbonControl)
    RunNplMacro "explain_error"
End Sub

Public Sub OnSizeTranches(control As IRibbonControl)
    RunNplMacro "size_tranches"
End Sub

Public Sub OnSensitivity(control As IRibbonControl)
    RunNplMacro "sensitivity_analysis"
End Sub

Private Sub RunNplMacro(macroName As String)
    If ActiveWorkbook Is Nothing Then
        MsgBox "Open a deal workbook (Tape, Tranches, Settings) first.", vbExclamation, "npl-xl"
        Exit Sub
    End If
    RunPython "import npl_xl_udfs.ribbon as ribbon; ribbon." & macroName & "()"
End Sub
