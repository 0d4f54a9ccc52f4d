"""The catalog: shipped as package data, complete for the Phi-3 family, internally consistent."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from archivist.engine.catalog import UnknownModel, load_catalog, parse_catalog
from archivist.errors import ArchivistError


def test_the_catalog_ships_as_package_data_of_archivist_models() -> None:
    text = resources.files("archivist_models").joinpath("catalog.toml").read_text(encoding="utf-8")
    assert tomllib.loads(text)["schema"] == 1


def test_the_family_and_its_variants_are_there(catalog) -> None:
    ids = [m.id for m in catalog.models]
    assert ids[0] == "phi-3-medium-128k-instruct"  # the seed model ranks first
    for model in ("phi-3-mini-4k-instruct", "phi-3-mini-128k-instruct", "phi-3-medium-4k-instruct",
                  "phi-3.5-mini-instruct", "smollm2-135m-instruct"):
        assert model in ids
    seed = catalog.model("phi-3-medium-128k-instruct")
    assert {(v.provider, v.precision) for v in seed.variants} == {
        ("cpu", "int4"), ("cuda", "int4"), ("cuda", "fp16"), ("dml", "int4")}
    assert catalog.variant("phi-3-mini-4k-instruct-cpu-int4").subfolder == \
        "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"
    assert catalog.variant("phi-3-medium-128k-instruct-dml-int4").repo == \
        "microsoft/Phi-3-medium-128k-instruct-onnx-directml"


def test_every_entry_is_consistent(catalog) -> None:
    for model in catalog.models:
        assert model.licence and model.context_length >= 2048 and model.layers > 0
        assert any(v.provider == "cpu" for v in model.variants), f"{model.id} has no CPU build"
        for v in model.variants:
            assert v.id.startswith(model.id)
            assert v.weights_bytes > 0 and v.kv_bytes in (2, 4)
            if v.source == "hub":
                assert v.repo.startswith("microsoft/") and v.subfolder and v.download_bytes >= v.weights_bytes
                assert v.id == f"{model.id}-{v.provider}-{v.precision}"
    assert catalog.variant("smollm2-135m-instruct").source == "built"


def test_unknown_ids_and_broken_entries_are_clear_errors(catalog) -> None:
    with pytest.raises(UnknownModel, match="no catalog variant"):
        catalog.variant("phi-9")
    bad = {"model": [{"id": "m", "name": "M", "params_b": 1, "context_length": 4096, "licence": "MIT",
                      "rank": 1, "layers": 1, "kv_heads": 1, "head_dim": 1,
                      "variant": [{"id": "m-tpu-int4", "provider": "tpu", "precision": "int4",
                                   "quantization": "", "weights_bytes": 1, "download_bytes": 1,
                                   "kv_bytes": 2, "repo": "r", "subfolder": "s"}]}]}
    with pytest.raises(ArchivistError, match="unknown provider"):
        parse_catalog(bad)


def test_a_catalog_file_can_be_given_explicitly(tmp_path, catalog) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(resources.files("archivist_models").joinpath("catalog.toml").read_text(encoding="utf-8"))
    assert load_catalog(path) == catalog
