"""Draw Archivist's icon (an archive box on a rounded square) as SVG and PNG.

    python installer/icons/make_icons.py

Pure Python (zlib for the PNG), so anyone can redraw it; the outputs are committed:
``archivist.svg`` and ``.png`` (Linux), ``.ico`` (Windows, PNG-compressed entries) and
``.icns`` (macOS, PNG entries ic07/ic08/ic09), so no image library is needed to build.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = 256
# (x0, y0, x1, y1, corner radius, colour), painted in order, on a 256 x 256 canvas.
SHAPES = [
    (12, 12, 244, 244, 48, "#264653"),  # background
    (52, 66, 204, 100, 10, "#E9C46A"),  # lid
    (64, 96, 192, 200, 10, "#F4A261"),  # box
    (64, 96, 192, 108, 0, "#D9893F"),  # shadow under the lid
    (104, 126, 152, 142, 8, "#264653"),  # handle
]


def svg() -> str:
    rects = "\n".join(
        f'  <rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" rx="{r}" fill="{c}"/>'
        for x0, y0, x1, y1, r, c in SHAPES
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">\n'
        f"  <title>Archivist</title>\n{rects}\n</svg>\n"
    )


def inside(px: float, py: float, shape: tuple) -> bool:
    x0, y0, x1, y1, r, _ = shape
    if not (x0 <= px <= x1 and y0 <= py <= y1):
        return False
    cx = min(max(px, x0 + r), x1 - r)
    cy = min(max(py, y0 + r), y1 - r)
    return (px - cx) ** 2 + (py - cy) ** 2 <= r * r


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def png(size: int = SIZE, samples: int = 4) -> bytes:
    scale = SIZE / size
    rows = []
    offsets = [(i + 0.5) / samples for i in range(samples)]
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for oy in offsets:
                for ox in offsets:
                    px, py = (x + ox) * scale, (y + oy) * scale
                    colour = None
                    for shape in SHAPES:
                        if inside(px, py, shape):
                            colour = shape[5]
                    if colour:
                        r, g, b = rgb(colour)
                        acc[0] += r
                        acc[1] += g
                        acc[2] += b
                        acc[3] += 255
            n = samples * samples
            alpha = acc[3] / n
            if alpha:
                cover = acc[3] / 255
                row += bytes([round(acc[0] / cover), round(acc[1] / cover), round(acc[2] / cover), round(alpha)])
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")


def ico(images: dict[int, bytes]) -> bytes:
    """A Windows .ico holding PNG images (Windows Vista and later read them)."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, data in sorted(images.items()):
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(data), offset + len(blobs))
        blobs += data
    return header + entries + blobs


def icns(images: dict[str, bytes]) -> bytes:
    """A macOS .icns holding PNG images by type (ic07 128 px, ic08 256 px, ...)."""
    body = b"".join(kind.encode() + struct.pack(">I", 8 + len(data)) + data for kind, data in images.items())
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> None:
    big, small = png(256), png(48)
    (HERE / "archivist.svg").write_text(svg(), "utf-8")
    (HERE / "archivist.png").write_bytes(big)
    (HERE / "archivist-48.png").write_bytes(small)
    (HERE / "archivist.ico").write_bytes(ico({256: big, 48: small, 32: png(32), 16: png(16)}))
    (HERE / "archivist.icns").write_bytes(icns({"ic07": png(128), "ic08": big, "ic09": png(512)}))


if __name__ == "__main__":
    main()
