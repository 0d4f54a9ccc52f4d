#!/usr/bin/env bash
# Wrap Archivist.app in a compressed disk image with an /Applications link to drag it to.
#
#   bash installer/macos/make_dmg.sh dist/Archivist.app dist/Archivist-0.1.0-macos-arm64.dmg
#
# Signing: PyInstaller signs the app ad hoc (enough for Apple Silicon to run it on the
# machine that downloads it after "Open" in the Finder's context menu). With a Developer
# ID, set ARCHIVIST_CODESIGN_IDENTITY for the build, and NOTARY_PROFILE (a profile saved
# with `xcrun notarytool store-credentials`) here to notarise and staple the image.
set -euo pipefail
app=${1:?usage: make_dmg.sh APP DMG}
dmg=${2:?usage: make_dmg.sh APP DMG}
[ -d "$app/Contents/MacOS" ] || { echo "$app is not an app bundle" >&2; exit 2; }
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
ditto "$app" "$staging/$(basename "$app")"
ln -s /Applications "$staging/Applications"
rm -f "$dmg"
hdiutil create -volname "Archivist" -srcfolder "$staging" -fs HFS+ -format UDZO -imagekey zlib-level=9 -ov "$dmg"
if [ -n "${ARCHIVIST_CODESIGN_IDENTITY:-}" ]; then
    codesign --sign "$ARCHIVIST_CODESIGN_IDENTITY" --timestamp "$dmg"
fi
if [ -n "${NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$dmg" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$dmg"
fi
hdiutil verify "$dmg"
echo "$dmg"
