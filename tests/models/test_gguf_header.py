"""The GGUF header is checked against the file's size before the ``gguf`` reader sees it.

The reader trusts the counts a file states: a 1 MB file whose metadata array claimed
2**62 elements made ``archivist models import`` grow without limit. These tests build
such files small and check that each is one ``ConversionError`` sentence, quickly. A
Hypothesis fuzz mutates a real small GGUF: whatever the bytes, the import either works or
says why in one sentence. It runs ``ARCHIVIST_FUZZ_EXAMPLES`` cases (default 150 in a
test run; ``ARCHIVIST_FUZZ_EXAMPLES=5000`` by hand).
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest
from conftest import write_tiny_gguf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archivist.errors import ConversionError
from archivist_models.gguf import convert
from archivist_models.gguf.header import MAX_METADATA_VALUES, scan_header
from archivist_models.gguf.source import GGUFSource

FUZZ_EXAMPLES = int(os.environ.get("ARCHIVIST_FUZZ_EXAMPLES", "150"))


def gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def header(keys: list[bytes], tensors: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, len(keys)) + b"".join(keys)


def array(item_type: int, count: int, payload: bytes = b"") -> bytes:
    return struct.pack("<IIQ", 9, item_type, count) + payload


def hostile(tmp_path: Path, body: bytes, pad: int = 1 << 20) -> Path:
    path = tmp_path / "hostile.gguf"
    path.write_bytes(body + b"\0" * pad)
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("item_type, what", [(0, "uint8"), (8, "string"), (9, "array")])
def test_an_array_claiming_2_to_the_62_elements_is_refused_at_once(tmp_path: Path, item_type: int,
                                                                    what: str) -> None:
    path = hostile(tmp_path, header([gguf_string("tokenizer.ggml.tokens") + array(item_type, 2**62)]))
    started = time.monotonic()
    with pytest.raises(ConversionError, match="not a readable GGUF file") as caught:
        convert(path, tmp_path / "out")
    assert time.monotonic() - started < 10
    assert "2**62" not in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_more_metadata_values_than_any_tokenizer_is_refused(tmp_path: Path) -> None:
    count = MAX_METADATA_VALUES + 1
    path = hostile(tmp_path, header([gguf_string("many") + array(0, count, b"\1" * count)]), pad=0)
    with pytest.raises(ConversionError, match="more than any model's tokenizer"):
        scan_header(path)


@pytest.mark.parametrize("body, match", [
    (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "tensors"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "metadata keys"),
    (header([struct.pack("<Q", 2**60) + b"key"]), "metadata key 1"),
    (header([gguf_string("k") + struct.pack("<I", 77)]), "unknown value type"),
    (header([gguf_string("k") + array(9, 1, struct.pack("<IQ", 9, 1) * 8)]), "nests arrays"),
    (b"GGUF" + struct.pack("<IQQ", 7, 0, 0), "version 7"),
    (header([], tensors=1) + gguf_string("t") + struct.pack("<I", 4096), "dimensions"),
])
def test_each_impossible_header_is_one_sentence(tmp_path: Path, body: bytes, match: str) -> None:
    with pytest.raises(ConversionError, match=match):
        scan_header(hostile(tmp_path, body, pad=64))


def test_a_real_gguf_passes_with_its_counts(default_gguf: Path) -> None:
    summary = scan_header(default_gguf)
    assert summary.version == 3 and summary.tensors == 272 and summary.keys > 20
    assert 49_152 < summary.values < MAX_METADATA_VALUES  # a 49,152-token vocabulary and its merges


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[int]]:
    """A tiny valid GGUF, and the offsets of its arrays' element counts (where a hostile
    count does the most harm)."""
    from gguf import GGUFReader, GGUFValueType

    path = write_tiny_gguf(tmp_path_factory.mktemp("fuzz") / "tiny.gguf")
    counts = []
    for field in GGUFReader(path).fields.values():
        if field.types and field.types[0] == GGUFValueType.ARRAY:
            key_bytes = len(field.name.encode())
            counts.append(field.offset + 8 + key_bytes + 4 + 4)  # key, value type, element type
    return path.read_bytes(), counts


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_any_mutation_of_a_gguf_reads_or_says_why(small_gguf: tuple[bytes, list[int]],
                                                       tmp_path_factory: pytest.TempPathFactory,
                                                       data: st.DataObject) -> None:
    clean, array_counts = small_gguf
    raw = bytearray(clean)
    header_end = scan_header_bytes(raw)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["byte", "count", "truncate"]), label="kind")
        anywhere = st.integers(0, max(0, min(len(raw), header_end) - 8))
        at = data.draw(st.one_of(st.sampled_from(array_counts), anywhere) if kind == "count" else anywhere,
                       label="offset")
        if kind == "byte":
            raw[at] = data.draw(st.integers(0, 255), label="value")
        elif kind == "count":  # a huge or odd 64-bit count where a length or count may sit
            value = data.draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**62, 2**64 - 1]), label="count")
            raw[at:at + 8] = struct.pack("<Q", value)
        else:
            del raw[data.draw(st.integers(4, len(raw)), label="cut"):]
    # zeros after it: room for a huge count to run through many (valid, empty) values
    padding = data.draw(st.sampled_from([0, 1 << 20]), label="padding")
    path = tmp_path_factory.mktemp("case") / "case.gguf"
    path.write_bytes(bytes(raw) + b"\0" * padding)
    started = time.monotonic()
    try:
        GGUFSource(path)
    except ConversionError as exc:
        assert "\n" not in str(exc).strip()
    assert time.monotonic() - started < 5


def scan_header_bytes(raw: bytearray) -> int:
    """Where the tiny file's header ends (mutations aim at the header, where the counts are)."""
    path_free = bytes(raw)
    from archivist_models.gguf.header import _scan

    return _scan(path_free, "tiny.gguf").header_bytes
