"""Text from pictures of pages (OCR): RapidOCR's PP-OCR models on onnxruntime.

The engine is ``rapidocr-onnxruntime`` 1.4.4 (Apache-2.0): PaddleOCR's PP-OCRv4
models that find lines of text and read them, as ONNX files inside the wheel, so
nothing is downloaded when it runs. It runs on the onnxruntime the embedder uses. It is
optional: ``scripts/setup.sh`` installs it (``--no-deps``, with the ``ocr`` extra for
its other needs; docs/dependencies.md says why); without it a scanned page is skipped
with a reason saying how to install it.

What one page may cost is bounded before anything is decoded: an image of more than
:data:`MAX_PIXELS` pixels (a PDF's embedded image, or an image file, as its header
declares it) is refused with a reason, and a page is drawn at :data:`DPI` but never
more than :data:`MAX_SIDE` pixels on its longer side (so a poster is drawn smaller).
Lines are found on the page shrunk to :data:`DETECT_SIDE`, a band at a time
(:class:`_Bands`), so the engine's memory (about 500 MB at its peak in the reader) does
not grow with the page.

The engine is made once per process, when the first page needs it. In the reader
(:mod:`archivist_faiss.reading`), whose address space is capped on Linux, making it is
left out of the cap, as the loaders' imports are: its libraries and models are the same
whatever the file; what a page costs to read is counted.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

from archivist import UnreadableDocument
from archivist_faiss.layout import box_of, reading_order

DPI = 300  # a page is drawn at this resolution...
MAX_SIDE = 3300  # ...but at most this many pixels on its longer side (a letter page: 300 dpi)
DETECT_SIDE = 2000  # lines are found on the page shrunk to this (see recognize)...
STRIP_ROWS = 640  # ...a band of this many rows at a time (see _Bands), multiples of 32
STRIP_MARGIN = 96
MAX_PIXELS = 50_000_000  # an image this large is refused unread (a 600-dpi legal page is 43 million)
ENGINE = "rapidocr-onnxruntime==1.4.4"
INSTALL = f"pip install --no-deps {ENGINE} and archivist[ocr], or run scripts/setup.sh"

_lock = threading.Lock()
_engine: Any = None


class OcrUnavailable(UnreadableDocument):
    """The OCR engine is not installed (or would not start): the file is tried again at
    the next sync, since installing it is what the reason asks for."""

    transient = True


def missing() -> str | None:
    """Why OCR cannot run here, or None when it can (the engine is found, not loaded)."""
    import importlib.util

    for module in ("rapidocr_onnxruntime", "onnxruntime", "cv2", "PIL"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"OCR is not installed ({INSTALL})"
    return None


def too_many_pixels(width: int, height: int, what: str) -> str | None:
    """The reason to refuse an image of ``width`` x ``height`` before decoding it, or
    None; ``what`` starts the reason ("the image has")."""
    if width * height <= MAX_PIXELS:
        return None
    return (f"{what} {width:,} x {height:,} pixels, more than the {MAX_PIXELS:,} OCR reads "
            f"(a decompression bomb?)")


def scale_for(width: float, height: float, dpi: float = DPI) -> float:
    """Pixels per unit of a page ``width`` x ``height`` (in PDF points, 1/72 inch) drawn
    at ``dpi``, or less so that its longer side is :data:`MAX_SIDE` pixels at most."""
    return min(dpi / 72.0, MAX_SIDE / max(width, height, 1.0))


def recognize(image: Any) -> str:
    """The text of ``image`` (a PIL image of a page, any mode), lines in reading order,
    blocks separated by a blank line. An image larger than :data:`MAX_SIDE` is shrunk
    first. Raises :class:`OcrUnavailable` when the engine cannot run.

    Text is found on the page shrunk to :data:`DETECT_SIDE` pixels and read from the
    page as given: finding lines needs less detail than reading them (at 2,000 pixels
    for a letter page, the gaps between tightly set words were lost, and finding lines
    on the full 3,300 pixels split them worse and took twice as long)."""
    import numpy as np

    if image.mode != "L":
        image = image.convert("L")
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return reading_order([box_of(points, text) for points, text in _read(engine(), np.asarray(image))])


def _read(ocr: Any, gray: Any) -> list[tuple[Any, str]]:
    """RapidOCR's own steps (``RapidOCR.__call__`` of 1.4.4), but each line is cut for
    reading from ``gray`` itself rather than from the shrunk page that lines were found on."""
    import cv2

    page = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    height, width = page.shape[:2]
    shrunk, ratio_h, ratio_w = ocr.preprocess(page)  # to DETECT_SIDE at most (multiples of 32)
    steps: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
    shrunk, steps = ocr.maybe_add_letterbox(shrunk, steps)  # a strip of one line gets a margin
    boxes, _ = ocr.auto_text_det(shrunk)
    del shrunk
    if boxes is None or len(boxes) == 0:
        return []
    boxes = ocr._get_origin_points(boxes, steps, height, width)  # back to the page's pixels
    lines = ocr.get_crop_img_list(page, list(boxes))
    del page
    # No orientation classifier (``text_cls``): on lines cut at this resolution it took
    # right-way-up lines for upside-down ones and turned them (linn.png lost 2 of 90
    # lines; CER 6.9% with it, 2.2% without). A page upside down is read badly.
    read, _ = ocr.text_rec(lines, False)
    return [(box, found[0]) for box, found in zip(boxes, read) if float(found[1]) >= ocr.text_score]


def engine() -> Any:
    """The process's engine, made at the first call (see the module's docstring)."""
    global _engine
    with _lock:
        if _engine is None:
            problem = missing()
            if problem is not None:
                raise OcrUnavailable(problem)
            with _outside_address_cap():
                _engine = _make()
        return _engine


def _make() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
        from rapidocr_onnxruntime.utils import infer_engine
    except ImportError as exc:  # a broken install: onnxruntime or OpenCV cannot load
        raise OcrUnavailable(f"OCR could not start ({type(exc).__name__}: {exc}; {INSTALL})") from exc
    # The engine's own options, with idle worker threads sleeping rather than spinning,
    # as the embedder's: on two cores shared with the app, spinning cost 50% more CPU.
    make_options = infer_engine.OrtInferSession._init_sess_opts
    if not getattr(make_options, "archivist", False):
        def options(config: dict[str, Any]) -> Any:
            opts = make_options(config)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return opts

        options.archivist = True  # type: ignore[attr-defined]
        infer_engine.OrtInferSession._init_sess_opts = staticmethod(options)
    made = RapidOCR(max_side_len=DETECT_SIDE, use_cls=False)
    made.text_det.infer = _Bands(made.text_det.infer)
    for name in ("RapidOCR", "OrtInferSession"):  # it logs to stderr at DEBUG by default
        logging.getLogger(name).setLevel(logging.ERROR)
    return made


class _Bands:
    """The detection model run on bands of the page rather than the whole of it.

    The model maps a page to a map of where text is, one value a pixel, through layers
    of up to 96 values a pixel: a page of 2,000 x 1,568 took 600 MB. It sees only
    nearby pixels, so it is run on bands of :data:`STRIP_ROWS` rows with
    :data:`STRIP_MARGIN` rows more on each side, and the middle of each band's map is
    kept: the same map, in about 250 MB, for 30% more time in this step.
    """

    def __init__(self, infer: Any) -> None:
        self.infer = infer

    def __call__(self, page: Any) -> list[Any]:
        import numpy as np

        height = page.shape[2]
        if height <= STRIP_ROWS + 2 * STRIP_MARGIN:
            return list(self.infer(page))
        found = None
        for top in range(0, height, STRIP_ROWS):
            start, end = max(0, top - STRIP_MARGIN), min(height, top + STRIP_ROWS + STRIP_MARGIN)
            band = self.infer(np.ascontiguousarray(page[:, :, start:end, :]))[0]
            if found is None:
                found = np.empty((*band.shape[:2], height, band.shape[3]), dtype=band.dtype)
            rows = min(STRIP_ROWS, height - top)
            found[:, :, top:top + rows, :] = band[:, :, top - start:top - start + rows, :]
        return [found]


@contextlib.contextmanager
def _outside_address_cap() -> Iterator[None]:
    """Run the block with the address-space cap (``RLIMIT_AS``) lifted, then put it back
    raised by what the block mapped. Also keeps glibc's per-thread heaps to two (each
    reserves 64 MB of address space, which the cap counts), where the cap is set."""
    try:
        import resource
    except ImportError:  # Windows: no cap to lift
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        yield
        return
    _fewer_heaps()
    before = _address_space()
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        yield
    finally:
        grown = max(0, _address_space() - before)
        ceiling = soft + grown if hard == resource.RLIM_INFINITY else min(soft + grown, hard)
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))


def _fewer_heaps() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl): nothing to do
        pass


def _address_space() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
