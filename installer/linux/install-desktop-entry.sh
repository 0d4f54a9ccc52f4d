#!/bin/sh
# Put this unpacked Archivist into your menu and on your PATH, for you only (no root):
# ~/.local/bin/archivist, ~/.local/share/applications/archivist.desktop and the icon.
# Run it again after moving the folder; `install-desktop-entry.sh --remove` undoes it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
bin=$HOME/.local/bin
if [ "${1:-}" = "--remove" ]; then
    rm -f "$bin/archivist" "$data/applications/archivist.desktop" \
        "$data/icons/hicolor/256x256/apps/archivist.png" "$data/icons/hicolor/scalable/apps/archivist.svg"
    echo "removed the menu entry and ~/.local/bin/archivist (your data is untouched)"
    exit 0
fi
mkdir -p "$bin" "$data/applications" "$data/icons/hicolor/256x256/apps" "$data/icons/hicolor/scalable/apps"
ln -sf "$here/archivist" "$bin/archivist"
sed "s|@EXEC@|$here/archivist|g" "$here/share/archivist.desktop.in" > "$data/applications/archivist.desktop"
cp "$here/share/archivist.png" "$data/icons/hicolor/256x256/apps/archivist.png"
cp "$here/share/archivist.svg" "$data/icons/hicolor/scalable/apps/archivist.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "Archivist is in your menu; the command is $bin/archivist"
case ":$PATH:" in *":$bin:"*) ;; *) echo "(add $bin to your PATH to type 'archivist' anywhere)";; esac
