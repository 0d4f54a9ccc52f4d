"""PyInstaller runtime hook: runs in the frozen app before any of its own code.

* Telemetry off before onnxruntime can be imported (``archivist/__init__.py`` does the
  same; this covers anything imported earlier) and for huggingface_hub.
* ``ARCHIVIST_BUNDLED_MODELS`` points at the models shipped inside the app (the default
  model and the sentence embedder), so a fresh home answers offline without copying
  them. A value the user set wins.
"""

import os
import sys

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

_base = getattr(sys, "_MEIPASS", None)
if _base:
    _models = os.path.join(_base, "models")
    if os.path.isdir(_models):
        os.environ.setdefault("ARCHIVIST_BUNDLED_MODELS", _models)
