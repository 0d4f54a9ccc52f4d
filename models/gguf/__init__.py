"""GGUF -> onnxruntime-genai conversion.

Entry point: ``convert(gguf_path, out_dir, expected_sha256=..., progress=...)``. The work is
split by responsibility so new formats and architectures slot in:

* ``source.py``        open and check the file (existence, sha256, truncation)
* ``spec.py``          hyperparameters and the supported architectures (llama, mistral,
                       qwen2, phi3)
* ``packing.py``       one packer per GGML weight type (MatMulNBits layouts), each exact
* ``graph.py``         the ONNX decoder graph (fused ORT contrib operators)
* ``rope.py``          rotary caches: plain, llama 3.1 ``rope_freqs``, Phi-3 LongRoPE
* ``external_data.py`` streaming writer of ``model.onnx.data``
* ``tokenizer.py``     ``tokenizer.json`` / ``tokenizer_config.json`` from the GGUF vocabulary
* ``spm.py``           SentencePiece-style ("llama") vocabularies as a byte-fallback BPE
* ``genai_config.py``  ``genai_config.json``
* ``converter.py``     orchestration and the atomic write
* ``__main__.py``      ``python -m archivist_models.gguf FILE.gguf OUT_DIR``

Users reach it through ``archivist models import FILE.gguf`` (``docs/models.md``).
"""

from .converter import CONVERTER_VERSION, MANIFEST, convert, read_manifest
from .graph import GraphOptions

__all__ = ["CONVERTER_VERSION", "MANIFEST", "GraphOptions", "convert", "read_manifest"]
