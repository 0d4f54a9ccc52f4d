"""Pictures of pages (.png, .jpg, .jpeg, .tif, .tiff), read by OCR (:mod:`ocr`).

Each image is one page; a TIFF of several frames (a fax, a scanner's multi-page file)
is one page per frame, numbered from 1 for citations. Pillow reads the header first:
an image that declares more than :data:`~archivist_faiss.ocr.MAX_PIXELS` pixels is
refused before any of it is decoded, and a JPEG is decoded straight at the size OCR
reads (``draft``), not at full size and then shrunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archivist import Document, DocumentPart, Locator, UnreadableDocument
from archivist_faiss import ocr
from archivist_faiss.loading import report_pages

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff",
        ".tiff": "image/tiff"}


class ImageLoader:
    name = "image"
    extensions: tuple[str, ...] = tuple(MIME)

    def __init__(self, max_pages: int = 20000) -> None:
        self.max_pages = max_pages

    def load(self, path: Path) -> Document:
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError as exc:  # the ocr extra is not installed
            raise ocr.OcrUnavailable(f"an image: its text is read by OCR, and {ocr.missing()}") from exc
        try:
            image = Image.open(path)  # the header only
        except Image.DecompressionBombError as exc:  # Pillow's own ceiling (twice its MAX_IMAGE_PIXELS), above ours
            raise UnreadableDocument(f"the image has more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, "
                                     f"more than the {ocr.MAX_PIXELS:,} OCR reads (a decompression bomb?)") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise UnreadableDocument(f"corrupt or unknown image ({type(exc).__name__}: {exc})") from exc
        with image:
            frames = _frames(image)
            if frames > self.max_pages:
                raise UnreadableDocument(f"image of {frames} pages is over the limit of {self.max_pages}")
            problem = ocr.missing()
            if problem is not None:
                raise ocr.OcrUnavailable(f"an image: its text is read by OCR, and {problem}")
            parts, refused = [], []
            for i in range(frames):
                report_pages(i, frames)
                try:
                    image.seek(i)
                except (EOFError, OSError, ValueError):
                    break  # fewer frames than the file said: the ones read stay
                what = "the image has" if frames == 1 else f"page {i + 1} of the image has"
                problem = ocr.too_many_pixels(image.width, image.height, what)
                if problem is not None:
                    refused.append(problem)
                    continue
                try:
                    page = _decoded(image)
                except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
                    refused.append(f"{'the image' if frames == 1 else f'page {i + 1}'} could not be decoded "
                                   f"({type(exc).__name__}: {exc})")
                    continue
                text = ocr.recognize(page)
                if text.strip():
                    parts.append(DocumentPart(text, Locator(page=i + 1, start=0, end=len(text))))
            report_pages(frames, frames)
        if not parts:
            raise UnreadableDocument(refused[0] if refused else "no text found in the image (by OCR)")
        metadata: dict[str, Any] = {"pages": frames, "ocr_pages": frames - len(refused)}
        return Document(str(path), tuple(parts), mime_type=MIME.get(path.suffix.lower()), metadata=metadata)


def _frames(image: Any) -> int:
    """Pages in a TIFF; one for any other image (an animated PNG is one picture)."""
    if image.format != "TIFF":
        return 1
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except (OSError, ValueError, EOFError):
        return 1


# EXIF orientation (tag 274) -> the turn that puts the picture upright (as ImageOps.exif_transpose)
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
            7: "TRANSVERSE", 8: "ROTATE_90"}


def _decoded(image: Any) -> Any:
    """The current frame decoded, in grey, no larger than OCR reads (a JPEG is decoded at
    that size directly), turned upright by its EXIF orientation once it is small."""
    from PIL import Image

    side = ocr.MAX_SIDE
    try:
        turn = _UPRIGHT.get(image.getexif().get(274))
    except (OSError, ValueError, SyntaxError, TypeError):  # a broken EXIF block: read it as it lies
        turn = None
    if image.format == "JPEG":
        image.draft("L", (side, side))  # decodes at 1/2, 1/4 or 1/8 size while that is still >= side
    if image.mode.startswith("I"):  # 16- or 32-bit grey: keep the top 8 bits, not the clipped bottom
        frame = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    else:
        frame = image.convert("L")
    frame.thumbnail((side, side))
    if turn is not None:
        frame = frame.transpose(getattr(Image.Transpose, turn))
    return frame
