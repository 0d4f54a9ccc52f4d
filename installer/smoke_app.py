"""Smoke test of a built app on any platform (CI uses it on Windows and macOS).

    python installer/smoke_app.py PATH/TO/archivist[.exe]

Runs the frozen command line with an empty data folder and a minimal environment:
``--version``, ``doctor --json``, ``plugins list --json``, ``index`` of a sample folder and
a grounded ``ask --json`` that must cite the sample file. Linux has the stricter
``installer/smoke.sh`` (installed package, no network, build machine hidden).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOTES = """# Notes from Skerry Point lighthouse

The keeper of Skerry Point lighthouse is Ailsa Brannigan. She keeps a cat called
Marmalade, a ginger tabby born in 2011, who sleeps on the lamp-room stairs.
"""
QUESTION = "What is the name of the lighthouse keeper's cat?"
KEEP = ("SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "TEMP", "TMP", "PATH", "LANG", "COMSPEC")


def main(argv: list[str]) -> int:
    exe = Path(argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="archivist-smoke-") as tmp:
        root = Path(tmp)
        sample = root / "sample"
        sample.mkdir()
        (sample / "lighthouse-notes.md").write_text(NOTES, "utf-8")
        (sample / "shopping.txt").write_text("Shopping list: oat milk, rye bread, lentils.\n", "utf-8")
        env = {k: v for k, v in os.environ.items() if k.upper() in KEEP}
        env.update(HOME=str(root / "home"), USERPROFILE=str(root / "home"), ARCHIVIST_HOME=str(root / "data"))

        def run(*args: str) -> str:
            start = time.perf_counter()
            done = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=900)
            print(f"{time.perf_counter() - start:7.1f} s  archivist {' '.join(args)}", flush=True)
            if done.returncode != 0:
                print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
                raise SystemExit(f"archivist {' '.join(args)} failed with exit code {done.returncode}")
            return done.stdout

        print(run("--version").strip())
        doctor = json.loads(run("doctor", "--json"))
        print(json.dumps(doctor, indent=1)[:1500])
        plugins = run("plugins", "list", "--json")
        assert '"faiss"' in plugins and '"safety"' in plugins, plugins
        run("index", str(sample), "--json")
        answer = json.loads(run("ask", QUESTION, "--json", "--max-tokens", "64"))
        cited = [c["path"] for c in answer["citations"]]
        print("answer:", answer["answer"].strip()[:300])
        print("citations:", cited)
        assert answer["grounded"] and any(p.endswith("lighthouse-notes.md") for p in cited), answer
        assert (root / "data" / "archivist.db").is_file(), "no database was created"
    print("SMOKE TEST PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
