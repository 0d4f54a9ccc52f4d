"""Downloads through huggingface_hub against a local hub: resume, cancel, corruption, full disk."""

from __future__ import annotations

import json
import threading
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import CPU_FOLDER, PHI3_REPO

from archivist.engine.download import (
    DownloadCancelled,
    IntegrityError,
    NotEnoughDisk,
    install_variant,
    partial_folder,
    remove_model,
    unfinished_downloads,
)
from archivist.engine.installed import installed_models

VARIANT = "phi-3-mini-4k-instruct-cpu-int4"
DATA = "acc-level-4.onnx.data"


def test_install_fetches_only_the_subfolder_and_verifies_it(hub, catalog, tmp_path: Path) -> None:
    models = tmp_path / "models"
    seen = []
    folder = install_variant(catalog.variant(VARIANT), models, progress=seen.append)

    assert folder == models / VARIANT
    files = hub.repos[PHI3_REPO].files
    for path, data in files.items():
        if path.startswith(CPU_FOLDER + "/"):
            assert (folder / path.rsplit("/", 1)[1]).read_bytes() == data
    fetched = [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]
    assert fetched and all(CPU_FOLDER in p for p in fetched)  # no README, no cuda folder
    meta = json.loads((folder / "archivist.json").read_text())
    assert meta["provider"] == "cpu" and meta["commit"] == hub.repos[PHI3_REPO].commit
    assert not (folder / ".cache").exists()
    assert not partial_folder(models, VARIANT).exists()
    assert [m.id for m in installed_models(models)] == [VARIANT]
    # progress: monotonic up to the exact total the hub listed
    total = sum(len(d) for p, d in files.items() if p.startswith(CPU_FOLDER + "/"))
    assert seen[-1].done_bytes == seen[-1].total_bytes == total
    assert all(a.done_bytes <= b.done_bytes for a, b in pairwise(seen))


def test_a_connection_cut_mid_file_is_resumed_with_a_range_request(hub, catalog, tmp_path: Path) -> None:
    repo = hub.repos[PHI3_REPO]
    data_path = next(p for p in repo.files if p.endswith(DATA))
    repo.cut_after[data_path] = 13 * 2**20  # the client has written its first 10 MB chunk

    folder = install_variant(catalog.variant(VARIANT), tmp_path / "models")

    assert (folder / data_path.rsplit("/", 1)[1]).read_bytes() == repo.files[data_path]
    ranges = hub.gets(DATA)
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_a_corrupted_file_is_deleted_and_nothing_is_installed(hub, catalog, tmp_path: Path) -> None:
    repo = hub.repos[PHI3_REPO]
    data_path = next(p for p in repo.files if p.endswith(DATA))
    good = repo.files[data_path]
    repo.corrupt[data_path] = good[:-1] + bytes([good[-1] ^ 0xFF])
    models = tmp_path / "models"

    with pytest.raises(IntegrityError, match="checksum"):
        install_variant(catalog.variant(VARIANT), models)

    assert installed_models(models) == []
    assert not (models / VARIANT).exists()
    assert not (partial_folder(models, VARIANT) / data_path).exists()
    # the hub is fixed: the next install fetches only what was not verified yet
    del repo.corrupt[data_path]
    before = len(hub.gets(".onnx"))
    install_variant(catalog.variant(VARIANT), models)
    assert len(hub.gets(".onnx")) == before  # the small .onnx verified last time is not fetched again
    assert [m.id for m in installed_models(models)] == [VARIANT]


def test_a_full_disk_is_refused_before_any_byte_is_fetched(hub, catalog, tmp_path: Path) -> None:
    models = tmp_path / "models"
    with pytest.raises(NotEnoughDisk, match=r"only 1\.0 MB is free"):
        install_variant(catalog.variant(VARIANT), models, free_space=lambda _: 2**20)
    assert not [p for m, p, _ in hub.requests if "/resolve/" in p]
    assert installed_models(models) == []


def test_cancel_keeps_verified_files_and_a_second_install_resumes(hub, catalog, tmp_path: Path) -> None:
    models = tmp_path / "models"
    cancel = threading.Event()

    def stop_in_the_big_file(p) -> None:
        if p.filename.endswith(".onnx.data") and p.done_bytes > 4 * 2**20:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        install_variant(catalog.variant(VARIANT), models, progress=stop_in_the_big_file, cancel=cancel)
    assert installed_models(models) == []
    [pending] = unfinished_downloads(models)
    assert pending["id"] == VARIANT and pending["verified_files"] >= 1

    first_gets = {p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p}
    hub.requests.clear()
    install_variant(catalog.variant(VARIANT), models)
    again = {p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p}
    assert any(p.endswith(DATA) for p in again)
    assert len(again) < len(first_gets) + 1 and not any(p.endswith("genai_config.json") for p in again)
    assert unfinished_downloads(models) == []


def test_remove_deletes_the_model_and_refuses_unknown_ids(hub, catalog, tmp_path: Path) -> None:
    models = tmp_path / "models"
    install_variant(catalog.variant(VARIANT), models)
    remove_model(models, VARIANT)
    assert installed_models(models) == []
    from archivist.errors import ModelNotFound

    with pytest.raises(ModelNotFound):
        remove_model(models, VARIANT)
    with pytest.raises(ModelNotFound):
        remove_model(models, "../outside")
