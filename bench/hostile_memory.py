"""Peak memory while indexing every file of ../shared/data/formats together with the
hostile files of issue #11, through the real CLI (`archivist index`) on a fresh home.

    .venv/bin/python bench/hostile_memory.py [--out bench/results/hostile_memory.json]

The hostile files are made here, small, the way the issue describes them: a 253-byte ODT
asking for 2,000,000,000 spaces, a .docx that unpacks to hundreds of MB of XML, a
200,000,000-byte single-line .txt, 50 KB of random bytes named .eml, pages declaring
UTF-7, a slide numbered 99999999999999999999, a file name that is not UTF-8, and the real
decompression bomb ../shared/data/scans/hugemono.pdf.

Memory is sampled every 20 ms from /proc (Linux): the resident set of the `archivist`
process and of every process under it (the document reader runs in a child), summed at
each instant; the table shows the largest sum, and each process's own peak (VmHWM).
Target (issue #11): under 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ODT = ('<?xml version="1.0"?><office:document-content '
       'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
       'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>{}'
       '</office:text></office:body></office:document-content>')
WORD = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DRAWING = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'


def docx_of_paragraphs(path: Path, count: int, text: str) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("word/document.xml", "w") as out:
        out.write(f"<w:document {WORD}><w:body>".encode())
        block = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode() * 1000
        for _ in range(count // 1000):
            out.write(block)
        out.write(b"</w:body></w:document>")


def make_hostile(folder: Path) -> list[str]:
    """Write the hostile files into ``folder``; return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "spaces.odt", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("content.xml", ODT.format('<text:p>Lighthouse<text:s text:c="2000000000"/>keeper</text:p>'))
    with zipfile.ZipFile(folder / "overflow.pptx", "w") as zf:
        zf.writestr("ppt/slides/slide99999999999999999999.xml",
                    f'<p:sld xmlns:p="p" {DRAWING}><a:p><a:r><a:t>Volcanoes</a:t></a:r></a:p></p:sld>')
    # about 447 MB of XML in a few MB (refused unread), then 30 MB of XML of real words (read)
    docx_of_paragraphs(folder / "bomb.docx", 13_000_000, "x")
    docx_of_paragraphs(folder / "long.docx", 600_000, "the lighthouse keeper")
    with open(folder / "oneline.txt", "wb") as out:
        chunk = b"lighthouse " * 100_000
        for _ in range(200_000_000 // len(chunk)):
            out.write(chunk)
    (folder / "random.eml").write_bytes(random.Random(11).randbytes(50_000))
    (folder / "utf7.html").write_bytes(b'<html><head><meta charset="utf-7"></head><body><p>Birds +2D0- migrate'
                                       b"</p></body></html>")
    (folder / "utf7.eml").write_bytes(b"From: a@example.org\nSubject: fish\nContent-Type: text/plain; "
                                      b"charset=utf-7\n\nFishes +2D0- swim upstream\n")
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("A name that is not UTF-8.\n")
    bomb = SHARED / "scans" / "hugemono.pdf"
    if bomb.exists():
        shutil.copy(bomb, folder / "hugemono.pdf")
    return sorted(os.listdir(folder))


def tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "hostile_memory.json"))
    args = ap.parse_args()
    if not Path("/proc/self/status").exists():
        sys.exit("this bench samples /proc: Linux only")
    formats = SHARED / "formats"
    if not formats.is_dir():
        sys.exit(f"{formats} is absent")
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        shutil.copytree(formats, docs / "formats")
        names = make_hostile(docs / "hostile")
        home = Path(tmp) / "home"
        # the search encoder, built the way `archivist models build-default` builds it
        subprocess.run([sys.executable, "-m", "archivist_models.embedder", "--dest",
                        str(home / "models" / "embedder-minilm-l6-v2"), "--cache-dir", str(ROOT / ".cache" / "wheels")],
                       check=True, capture_output=True)
        env = dict(os.environ, ARCHIVIST_HOME=str(home))
        exe = Path(sys.executable).with_name("archivist")
        t0 = time.monotonic()
        proc = subprocess.Popen([str(exe), "index", str(docs), "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peak_sum, peaks = 0, {}
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_sum
            while not done.is_set():
                pids = tree(proc.pid)
                total = 0
                for p in pids:
                    rss = status_kb(p, "VmRSS")
                    total += rss
                    peaks[p] = max(peaks.get(p, 0), status_kb(p, "VmHWM"))
                peak_sum = max(peak_sum, total)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, err = proc.communicate()
        done.set()
        sampler.join()
        seconds = time.monotonic() - t0
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    report = lines[-1] if lines else {}
    skipped = report.get("skipped", [])
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_mb_tree": round(peak_sum / 1024),
        "peak_rss_mb_per_process": sorted((round(v / 1024) for v in peaks.values()), reverse=True)[:4],
        "hostile_files": names,
        "indexed": len(report.get("indexed", [])),
        "skipped": [{"path": Path(s["path"]).name, "reason": s["reason"]} for s in skipped]
        if skipped and isinstance(skipped[0], dict) else skipped,
        "stderr_tail": err.decode(errors="replace")[-400:],
    }
    print(f"{'exit code':<32}{result['exit_code']}")
    print(f"{'seconds':<32}{result['seconds']}")
    print(f"{'peak RSS, app + reader (MB)':<32}{result['peak_rss_mb_tree']}   (target < 1536)")
    print(f"{'peak RSS per process (MB)':<32}{result['peak_rss_mb_per_process']}")
    print(f"{'files indexed':<32}{result['indexed']}")
    for s in result["skipped"]:
        print(f"  skipped {s['path'] if isinstance(s, dict) else s}: {s['reason'] if isinstance(s, dict) else ''}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
