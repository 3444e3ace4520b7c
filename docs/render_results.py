"""Render the sample deal's Results sheet as LibreOffice draws it, for the docs.

    python docs/render_results.py [--n-sims 10000]

Runs ``npl-xl run`` on workbooks/sample_deal.xlsx into a temporary folder, converts the
output workbook to PDF with LibreOffice (headless, throw-away profile), finds the page that
holds the Results sheet's title and writes it as docs/results_sheet.png (pdftoppm, from
poppler-utils); the matplotlib PNG of the same charts goes to docs/results_charts.png.
Needs soffice, pdftotext and pdftoppm on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SAMPLE = DOCS.parent / "workbooks" / "sample_deal.xlsx"
TITLE = "npl-xl simulation results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sims", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for tool in ("soffice", "pdftotext", "pdftoppm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install libreoffice-calc poppler-utils)")
    from npl_xl.cli import main_cli

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "sample_deal.run.xlsx"
        code = main_cli(["run", str(SAMPLE), "-o", str(out), "--n-sims", str(args.n_sims),
                         "--seed", str(args.seed), "--quiet"])
        if code:
            return code
        shutil.copyfile(out.with_suffix(".png"), DOCS / "results_charts.png")
        subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                        "--convert-to", "pdf", "--outdir", str(tmp), str(out)],
                       check=True, capture_output=True, timeout=300)
        pdf = out.with_suffix(".pdf")
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                              capture_output=True, text=True).stdout
        page = next(i for i, body in enumerate(text.split("\f"), start=1) if TITLE in body)
        subprocess.run(["pdftoppm", "-png", "-r", "110", "-f", str(page), "-l", str(page),
                        "-singlefile", str(pdf), str(DOCS / "results_sheet")], check=True)
    print(f"wrote {DOCS / 'results_sheet.png'} (PDF page {page}) and {DOCS / 'results_charts.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
