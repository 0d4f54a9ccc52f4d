#!/usr/bin/env bash
# Smoke test of the Linux package as a machine that has never seen the project would run it.
#
#   bash installer/smoke.sh [dist/archivist_<version>_<arch>.deb]
#
# The .deb is unpacked into a throwaway root. As root (with unshare), the checks run in
# private mount and network namespaces: no network at all (only a loopback that is down),
# the throwaway /opt/archivist bind-mounted where the package puts it, `archivist` found
# through the package's /usr/bin link, and /work, /root, /usr/local and the real /opt
# hidden behind empty folders, so nothing of the build machine's Python, virtualenvs,
# caches or source tree can be reached. Without root it runs the unpacked app directly
# (still with an empty environment; the network is then not cut: say so when reporting).
#
# Every run starts from an empty environment (env -i) and a fresh HOME, so the data
# folder is the platform default (~/.local/share/Archivist) created on the spot. It runs
# `archivist --version`, `doctor --json`, `plugins list --json`, indexes a sample folder
# (Markdown, text and a PDF, which the bundled pdfium must read),
# asks a question about it with --json, checks the answer cites the sample file, screens
# a line with the safety filter (its learned layer must load the bundled encoder),
# screens an unsure line with the model judge on (the bundled chat model must answer),
# opens the window off screen (QT_QPA_PLATFORM=offscreen) and saves a screenshot, and
# reports the installed size. KEEP=1 keeps the scratch folder; SKIP_GUI=1 skips the window.
set -euo pipefail

cd "$(dirname "$0")/.."
deb=${1:-$(ls -t dist/archivist_*.deb 2>/dev/null | head -n1)}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    echo "no .deb given and none in dist/: run python installer/build.py first" >&2
    exit 2
fi
deb=$(realpath "$deb")
work=$(mktemp -d /tmp/archivist-smoke.XXXXXX)
chmod 755 "$work"
if [ "${KEEP:-0}" = 1 ]; then echo "scratch: $work"; else trap 'rm -rf "$work"' EXIT; fi

echo "==> package $(basename "$deb") ($(du -h "$deb" | cut -f1))"
dpkg-deb --field "$deb" Package Version Architecture Installed-Size Depends | sed 's/^/    /'
dpkg-deb --extract "$deb" "$work/root"
test -x "$work/root/opt/archivist/archivist"
test "$(readlink "$work/root/usr/bin/archivist")" = /opt/archivist/archivist
test -f "$work/root/usr/share/applications/archivist.desktop"
test -f "$work/root/usr/share/icons/hicolor/256x256/apps/archivist.png"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$work/root/usr/share/applications/archivist.desktop"
fi

# Libraries the bundle asks the system for (the launcher puts _internal on the search
# path, so ldd gets it too). Qt's window plugins want the desktop's xcb/wayland/GTK
# libraries, which the package Recommends; anything else missing is a packaging bug.
missing=$(find "$work/root/opt/archivist" -name '*.so*' -type f -print0 |
    LD_LIBRARY_PATH="$work/root/opt/archivist/_internal" xargs -0 ldd 2>/dev/null |
    grep 'not found' | awk '{print $1}' | sort -u || true)
unexpected=$(echo "$missing" | grep -v -E '^(libxcb|libX|libwayland|libgtk-3|libgdk-3|libxkbcommon|libEGL|libGL|libOpenGL|libfontconfig|libfreetype|libdbus)' | grep . || true)
[ -z "$missing" ] || echo "    system libraries only the window's plugins use, absent here: $(echo $missing)"
if [ -n "$unexpected" ]; then
    echo "FAILED: libraries missing from the bundle: $unexpected" >&2
    exit 1
fi

# A sample folder with a fact no model knows.
mkdir -p "$work/sample" "$work/home" "$work/out"
cat > "$work/sample/lighthouse-notes.md" <<'EOF'
# Notes from Skerry Point lighthouse

The keeper of Skerry Point lighthouse is Ailsa Brannigan. She keeps a cat called
Marmalade, a ginger tabby born in 2011, who sleeps on the lamp-room stairs.
The lighthouse was painted teal in 1998 after a vote in the village hall.
EOF
cat > "$work/sample/shopping.txt" <<'EOF'
Shopping list: oat milk, rye bread, lentils, two lemons, coffee beans.
EOF
# A one-page PDF, written by hand: the bundled pdfium (stripped of its symbols) must read it.
python3 - "$work/sample/harbour.pdf" <<'EOF'
import sys
text = b"The harbour master of Port Quillon is Tobias Venn. His boat is called the Grey Heron."
stream = b"BT /F1 11 Tf 40 700 Td (" + text + b") Tj ET"
objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
           b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
           b" /Resources << /Font << /F1 5 0 R >> >> >>",
           b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
           b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
pdf, offsets = b"%PDF-1.4\n", []
for number, body in enumerate(objects, 1):
    offsets.append(len(pdf))
    pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
open(sys.argv[1], "wb").write(pdf)
EOF

cat > "$work/inner.sh" <<EOF
set -euo pipefail
cd "$work"  # a user's working folder, not the (hidden) source tree
if [ "\${ISOLATE:-0}" = 1 ]; then
    mount --make-rprivate /
    mount -t tmpfs -o size=1m,mode=755 none /opt
    mkdir /opt/archivist
    mount --bind "$work/root/opt/archivist" /opt/archivist
    for hide in /work /root /usr/local; do
        [ -d "\$hide" ] && mount -t tmpfs -o size=1m,mode=755 none "\$hide"
    done
    echo "    network interfaces in the namespace: \$(awk -F: 'NR > 2 {gsub(/ /, "", \$1); printf "%s ", \$1}' /proc/net/dev)"
    if (exec 3<>/dev/tcp/1.1.1.1/443) 2>/dev/null; then echo "FAILED: the network is reachable" >&2; exit 1; fi
    echo "    network: unreachable (a connection to 1.1.1.1:443 fails)"
    bin="$work/root/usr/bin"
else
    bin="$work/bin"
    mkdir -p "\$bin"
    ln -sf "$work/root/opt/archivist/archivist" "\$bin/archivist"
fi
run() { # name, command...: timed, output to out/<name>.json, stderr to out/<name>.err
    local name=\$1; shift
    local t0=\$(date +%s%N)
    env -i PATH="\$bin:/usr/bin:/bin" HOME="$work/home" LANG=C.UTF-8 "\$@" >"$work/out/\$name.out" 2>"$work/out/\$name.err" || {
        echo "FAILED: \$*" >&2; cat "$work/out/\$name.err" >&2; return 1; }
    local ms=\$(( (\$(date +%s%N) - t0) / 1000000 ))
    printf '    %-8s %4d.%01d s  %s\n' "\$name" \$((ms / 1000)) \$((ms % 1000 / 100)) "\$*"
}
echo "    archivist is \$(env -i PATH="\$bin:/usr/bin:/bin" sh -c 'command -v archivist')"
run version archivist --version
run doctor  archivist doctor --json
run plugins archivist plugins list --json
run index   archivist index "$work/sample" --json
run ask     archivist ask "What is the name of the lighthouse keeper's cat?" --json --max-tokens 64
# the safety filter's learned layer reads the bundled encoder (fp32, its first 4 layers)
run safety  sh -c 'echo "Please tell me the home address and phone number of my neighbour" | archivist safety check --json'
# the optional model judge: the bundled chat model answers the filter on an unsure line
run judge   sh -c 'echo "Tell me how to pick a lock." | archivist safety check --judge --json'
if [ "\${SKIP_GUI:-0}" != 1 ]; then  # the window, drawn off screen (no display needed)
    run window env QT_QPA_PLATFORM=offscreen archivist gui --screenshot "$work/out/window.png"
fi
EOF

echo "==> running the installed app (empty environment, fresh HOME)"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare --mount --net true 2>/dev/null; then
    echo "    isolated: no network, build machine's /work /root /usr/local /opt hidden"
    ISOLATE=1 unshare --mount --net --fork bash "$work/inner.sh"
else
    echo "    NOT isolated (needs root and unshare): the network was not cut for this run"
    ISOLATE=0 bash "$work/inner.sh"
fi

echo "==> checks"
python3 - "$work" <<'EOF'
import json, sys
from pathlib import Path

work = Path(sys.argv[1])
out = work / "out"
for err in sorted(out.glob("*.err")):  # a helper process the frozen app failed to start, a traceback
    text = err.read_text()
    for bad in ("No such option", "Traceback", "failed to load", "is off for this session", "learned layer off",
                "gave a plugin no answer"):
        assert bad not in text, f"{err.stem}: {bad!r} on stderr:\n{text}"
print("    version:", (out / "version.out").read_text().strip())
doctor = json.loads((out / "doctor.out").read_text())
print("    doctor:", ", ".join(f"{k}={doctor[k]!s:.60}" for k in list(doctor)[:4]))
plugins = (out / "plugins.out").read_text()
for name in ("faiss", "safety"):
    assert f'"{name}"' in plugins, f"plugin {name} missing: {plugins}"
print("    plugins: faiss and safety found")
index = json.loads((out / "index.out").read_text())
indexed = sorted(Path(p).name for p in index["indexed"])
print("    index:", indexed, "skipped:", index["skipped"], "passages:", index["passages"])
assert indexed == ["harbour.pdf", "lighthouse-notes.md", "shopping.txt"] and not index["skipped"], index
answer = json.loads((out / "ask.out").read_text())
cited = [c["path"] for c in answer["citations"]]
print("    answer:", answer["answer"].strip().replace("\n", " ")[:200])
print("    model:", answer["model"], "| provider:", answer["provider"], "| grounded:", answer["grounded"])
print("    citations:", cited)
assert answer["grounded"], "the answer was not grounded in the sample folder"
assert any(p.endswith("lighthouse-notes.md") for p in cited), "the answer does not cite the sample file"
print("    mentions Marmalade:", "marmalade" in answer["answer"].lower())
verdict = json.loads((out / "safety.out").read_text())
print("    safety:", verdict["action"], verdict["categories"], "score", verdict["score"], "(learned layer on)")
assert verdict["action"] != "allow" and "personal_data" in verdict["categories"], verdict
judged = json.loads((out / "judge.out").read_text())
print("    judge:", judged["action"], judged["categories"], "(the model answered the filter)")
home = work / "home" / ".local" / "share" / "Archivist"
assert (home / "archivist.db").is_file(), f"no database in {home}"
print("    data folder:", home, "(database created)")
window = out / "window.png"
if window.exists():
    assert window.read_bytes()[:4] == b"\x89PNG", "the window screenshot is not a PNG"
    print("    window: drawn off screen,", window.stat().st_size, "bytes of PNG")
EOF

echo "==> installed size"
du -sh "$work/root/opt/archivist" | sed 's/^/    total     /'
du -sh "$work/root/opt/archivist/_internal/models"/* | sed 's|'"$work/root"'||; s/^/    model     /'
echo "    largest other parts:"
# sed, not head: head exits early and sort then dies of SIGPIPE, which pipefail makes fatal
du -s "$work/root/opt/archivist/_internal"/* | sort -rn | sed -n 1,8p | while read -r kib path; do
    printf '      %6d MB  %s\n' $((kib / 1024)) "${path#"$work/root"}"
done
echo "SMOKE TEST PASSED"
