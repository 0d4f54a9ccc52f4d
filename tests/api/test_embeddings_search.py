"""``/v1/embeddings`` (the search encoder, as the library uses it) and ``/v1/search``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openai
import pytest
from doubles import RetrieverPlugin, StaticRetriever

from archivist import Locator, Passage

ENCODER = "archivist-search-encoder"


@pytest.fixture(scope="module")
def encoder_dir() -> Path:
    from archivist_models.embedder import RECIPE_VERSION, build_embedder

    cache = Path(__file__).resolve().parents[2] / ".cache"
    return build_embedder(cache / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", cache / "wheels")


@pytest.fixture()
def with_encoder(scripted_app, encoder_dir: Path):
    from archivist_models.embedder import EMBEDDER_DIR

    (scripted_app.paths.models / EMBEDDER_DIR).symlink_to(encoder_dir, target_is_directory=True)
    return encoder_dir


def test_embeddings_are_the_search_encoders_in_both_encodings(served, with_encoder) -> None:
    from archivist_models.embeddings import Embedder

    texts = ["When is the festival?", "Quimby is a market town."]
    expected = Embedder(with_encoder).embed(texts)
    client = served.client()
    as_floats = client.embeddings.create(model=ENCODER, input=texts, encoding_format="float")
    as_base64 = client.embeddings.create(model=ENCODER, input=texts)  # the client's default: base64
    for result in (as_floats, as_base64):
        got = np.array([d.embedding for d in result.data], dtype=np.float32)
        assert got.shape == (2, 384)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert result.usage.prompt_tokens > 6
    one = client.embeddings.create(model=ENCODER, input="one text")
    assert len(one.data) == 1 and one.data[0].index == 0


def test_embeddings_refuse_what_they_cannot_do(served, with_encoder) -> None:
    client = served.client()
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="archivist", input="x")
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.embeddings.create(model=ENCODER, input=["ok", " "])
    with pytest.raises(openai.BadRequestError, match="1 to 256"):
        client.embeddings.create(model=ENCODER, input=["x"] * 257)
    with pytest.raises(openai.BadRequestError, match="384 dimensions"):
        client.embeddings.create(model=ENCODER, input="x", dimensions=64)


def test_without_the_encoder_embeddings_say_how_to_get_it(served) -> None:
    with pytest.raises(openai.InternalServerError, match="build-default"):
        served.client().embeddings.create(model=ENCODER, input="x")


def test_search_returns_the_librarys_passages_with_where_they_are(scripted_app, served) -> None:
    passage = Passage("Tides at Port Elling peak at 06:12.", "/notes/tides.txt", Locator(page=2, start=5, end=40),
                      score=0.9, title="Tides")
    scripted_app.host.add("static", RetrieverPlugin(StaticRetriever([passage])))
    found = served.client().post("/search", body={"query": "tides", "k": 3}, cast_to=object)
    assert found["documents"] is True
    [hit] = found["data"]
    assert (hit["path"], hit["page"], hit["start"], hit["end"], hit["passage"]) == (
        "/notes/tides.txt", 2, 5, 40, passage.text)
    with pytest.raises(openai.BadRequestError, match="k is over"):
        served.client().post("/search", body={"query": "tides", "k": 500}, cast_to=object)
