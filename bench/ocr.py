"""OCR quality and speed: Archivist's engine (RapidOCR's PP-OCRv4 on onnxruntime, as the
index runs it) against Tesseract, on the same page images, in the same run.

    .venv/bin/python bench/ocr.py [--out bench/results/ocr.json]

Pages: ../shared/data/scans/linn.png, a scanned two-column product sheet, against
linn.txt, whose transcription was itself made by OCR (it has a few errors of its own,
and reads the columns in its own order), and pages of text PDFs from
../shared/data/formats drawn in grey at 300 dpi, as a scanner would give them, against
their own text layer. Character error rate (CER): Levenshtein edits from the reference
to the OCR text over the reference's length, after runs of white space are made one
space (and PDFium's hyphenation marks removed from the references); the order lines
come out in counts, so a two-column page read across the columns scores badly.

Tesseract is bench-only, never the app's: Debian's ``tesseract-ocr`` (with its English
data), installed here with apt-get when it is missing (root) and run as ``tesseract
IMAGE stdout -l eng`` (its automatic page layout). Each engine is timed per page, the
engine's start-up apart; the 1-minute load average is recorded, since the machine is
shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
# The character error rate the tests check OCR with (tests/retrieval/scans.py), one definition.
sys.path.insert(0, str(ROOT / "tests" / "retrieval"))
from scans import cer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
PDF_PAGES = [("fake-memo.pdf", 1), ("DA-619p.pdf", 21), ("layout-parser-paper-with-empty-pages.pdf", 1),
             ("multi-column.pdf", 1)]
RENDER_DPI = 300




def tesseract() -> tuple[str, str]:
    """The tesseract command and its version, installing Debian's package if needed."""
    if shutil.which("tesseract") is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            sys.exit("tesseract is not installed: apt-get install tesseract-ocr (bench-only)")
        print("installing tesseract-ocr with apt-get (bench-only)", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "tesseract-ocr", "tesseract-ocr-eng"], check=True,
                       stdout=subprocess.DEVNULL)
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return "tesseract", version


def pages(workdir: Path) -> list[dict[str, Any]]:
    """Each page: its name, a PNG of it, the PIL image, and the reference text."""
    import pypdfium2 as pdfium
    from PIL import Image

    found = []
    linn = SHARED / "scans" / "linn.png"
    if linn.exists():
        found.append({"page": "scans/linn.png (reference itself OCR'd)", "png": linn,
                      "image": Image.open(linn), "reference": (SHARED / "scans" / "linn.txt").read_text("utf-8")})
    for name, number in PDF_PAGES:
        path = SHARED / "formats" / name
        if not path.exists():
            continue
        pdf = pdfium.PdfDocument(str(path))
        page = pdf[number - 1]
        textpage = page.get_textpage()
        reference = textpage.get_text_range().replace("\ufffe", "").replace("\x02", "")
        textpage.close()
        image = page.render(scale=RENDER_DPI / 72, grayscale=True).to_pil()
        png = workdir / f"{path.stem}-p{number}.png"
        image.save(png, dpi=(RENDER_DPI, RENDER_DPI))
        found.append({"page": f"formats/{name} p.{number} ({RENDER_DPI} dpi)", "png": png, "image": image,
                      "reference": reference})
        pdf.close()
    if not found:
        sys.exit(f"no pages: {SHARED} is absent")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ocr.json")
    args = parser.parse_args()

    from archivist_faiss import ocr

    problem = ocr.missing()
    if problem:
        sys.exit(problem)
    command, tesseract_version = tesseract()
    t0 = time.perf_counter()
    ocr.engine()
    startup = time.perf_counter() - t0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for page in pages(Path(tmp)):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            ours = ocr.recognize(page["image"])
            ours_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            theirs = subprocess.run([command, str(page["png"]), "stdout", "-l", "eng"], capture_output=True,
                                    text=True, check=True).stdout
            theirs_s = time.perf_counter() - t0
            row = {"page": page["page"], "reference_chars": len(" ".join(page["reference"].split())),
                   "archivist_cer": cer(page["reference"], ours), "archivist_s": ours_s,
                   "tesseract_cer": cer(page["reference"], theirs), "tesseract_s": theirs_s,
                   "load_1min": load}
            rows.append(row)
            print(f"{row['page']}: archivist CER {row['archivist_cer']:.3f} in {ours_s:.1f} s, "
                  f"tesseract CER {row['tesseract_cer']:.3f} in {theirs_s:.1f} s (load {load:.1f})", flush=True)
    from importlib.metadata import version

    result = {
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "archivist": {"engine": f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')}",
                      "onnxruntime": version("onnxruntime") if _has("onnxruntime") else "?",
                      "startup_s": startup, "dpi": ocr.DPI, "max_side": ocr.MAX_SIDE,
                      "detect_side": ocr.DETECT_SIDE},
        "tesseract": tesseract_version,
        "pages": rows,
        "mean": {key: float(np.mean([r[key] for r in rows]))
                 for key in ("archivist_cer", "archivist_s", "tesseract_cer", "tesseract_s")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print()
    print("| page | characters | Archivist CER | s | Tesseract CER | s | load |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['page']} | {r['reference_chars']:,} | {r['archivist_cer']:.3f} | {r['archivist_s']:.1f} | "
              f"{r['tesseract_cer']:.3f} | {r['tesseract_s']:.1f} | {r['load_1min']:.1f} |")
    m = result["mean"]
    print(f"| **mean** | | {m['archivist_cer']:.3f} | {m['archivist_s']:.1f} | {m['tesseract_cer']:.3f} | "
          f"{m['tesseract_s']:.1f} | |")
    print(f"\nArchivist's engine started in {startup:.1f} s; {tesseract_version}; {cpu_name()}; wrote {args.out}")


def _has(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
