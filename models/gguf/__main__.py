"""``python -m archivist_models.gguf FILE.gguf OUT_DIR``: convert one GGUF file by hand.

The same conversion ``archivist models import`` runs, without the Archivist home: the
folder is written wherever ``OUT_DIR`` says (replaced atomically if it exists). Useful to
build a model folder on one machine and copy it to another, or to compare graph options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archivist.errors import ConversionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archivist_models.gguf",
                                     description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("gguf", type=Path, help="the GGUF file (llama, mistral, qwen2 or phi3)")
    parser.add_argument("out_dir", type=Path, help="the model folder to write")
    parser.add_argument("--id", dest="model_id", help="id recorded in archivist.json (default: the folder name)")
    parser.add_argument("--name", help="display name (default: the GGUF's general.name)")
    parser.add_argument("--sha256", help="refuse the file unless it has this sha256")
    parser.add_argument("--exact", action="store_true",
                        help="float32 compute instead of int8 activations (slower; bit-faithful logits)")
    args = parser.parse_args(argv)

    from . import GraphOptions, convert

    def show(stage: str, fraction: float) -> None:
        print(f"\r[{fraction * 100:5.1f}%] {stage:<40}", end="", file=sys.stderr, flush=True)

    try:
        folder = convert(args.gguf, args.out_dir, expected_sha256=args.sha256, progress=show,
                         model_id=args.model_id, name=args.name,
                         options=GraphOptions.exact() if args.exact else GraphOptions.fast())
    except ConversionError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
