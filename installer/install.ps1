# npl-xl installer for a Windows analyst's machine (PowerShell 5+).
#
#   powershell -ExecutionPolicy Bypass -File installer\install.ps1 [-Source <folder or wheel>]
#
# Creates a private Python environment under %LOCALAPPDATA%\npl-xl, installs npl-xl into it,
# then runs `npl-xl install`, which sets up Excel (see installer\README.md). Re-running it
# upgrades in place. Nothing is installed system-wide and no administrator rights are needed.
param(
    [string]$Source = (Split-Path -Parent $PSScriptRoot),
    [string]$Python = "py"
)
$ErrorActionPreference = "Stop"

$root = Join-Path $env:LOCALAPPDATA "npl-xl"
$venv = Join-Path $root "venv"
New-Item -ItemType Directory -Force -Path $root | Out-Null

Write-Host "npl-xl: Python environment in $venv"
if (-not (Test-Path (Join-Path $venv "Scripts\python.exe"))) {
    & $Python -3.11 -m venv $venv
    if ($LASTEXITCODE -ne 0) { & $Python -m venv $venv }
    if ($LASTEXITCODE -ne 0) { throw "could not create a Python 3.11+ environment; install Python from python.org first" }
}
$py = Join-Path $venv "Scripts\python.exe"
& $py -m pip install --upgrade pip
& $py -m pip install --upgrade $Source
if ($LASTEXITCODE -ne 0) { throw "pip could not install npl-xl from $Source" }

Write-Host "npl-xl: setting up Excel"
& (Join-Path $venv "Scripts\npl-xl.exe") install
if ($LASTEXITCODE -ne 0) { throw "npl-xl install failed (see the messages above)" }
Write-Host "npl-xl: done. Restart Excel; the NPL tab appears on the ribbon."
