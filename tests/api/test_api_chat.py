"""``/v1/models`` and ``/v1/chat/completions`` through the official client: grounded
answers with citations, streaming, history, the safety filter, and what is (not) saved."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from doubles import CollectionRetriever, RetrieverPlugin, StaticRetriever

from archivist import Locator, Passage
from archivist.store.conversations import Conversations

FESTIVAL = Passage(
    text="The Zorblat festival takes place every June in the town of Quimby.",
    path="/docs/festivals.txt",
    locator=Locator(page=3, start=0, end=66),
    score=1.0,
)
QUIMBY = Passage(
    text="Quimby is a market town of 4,000 people on the river Lune.",
    path="/docs/towns.txt",
    locator=Locator(page=1, start=10, end=68),
    score=0.8,
)


def with_sources(app, *passages: Passage) -> None:
    app.host.add("static", RetrieverPlugin(StaticRetriever(list(passages))))


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_models_lists_each_model_with_and_without_the_library_and_the_encoder(served) -> None:
    ids = [m.id for m in served.client().models.list()]
    assert ids[:2] == ["archivist", "archivist:nodocs"]
    assert {"scripted", "scripted:nodocs", "archivist-search-encoder"} <= set(ids)
    model = served.client().models.retrieve("scripted:nodocs")
    assert model.model_extra["archivist"]["documents"] is False
    with pytest.raises(openai.NotFoundError):
        served.client().models.retrieve("nothing-like-it")


def test_an_answer_cut_where_the_model_began_repeating_says_so_in_the_archivist_object(
        scripted_app, scripted, served) -> None:
    scripted.reply("Quimby is a market town. " + "The festival is in June every year. " * 6)
    completion = served.client().chat.completions.create(model="archivist:nodocs", messages=ask("Tell me."))
    assert completion.choices[0].message.content == "Quimby is a market town. The festival is in June every year."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model_extra["archivist"]["finish_reason"] == "repetition"


def test_a_grounded_answer_has_its_markers_and_citations_with_path_page_and_passage(scripted_app, scripted,
                                                                                 served) -> None:
    with_sources(scripted_app, FESTIVAL, QUIMBY)
    scripted.reply("The festival is in June [1].")
    completion = served.client().chat.completions.create(model="archivist", messages=ask("When is the festival?"))
    assert completion.choices[0].message.content == "The festival is in June [1]."
    assert completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra["archivist"]
    assert extra["grounded"] is True
    [citation] = extra["citations"]
    assert citation["n"] == 1 and citation["cited"] is True
    assert (citation["path"], citation["page"], citation["passage"]) == (FESTIVAL.path, 3, FESTIVAL.text)
    assert "[1] (festivals.txt, page 3)" in scripted.prompts[-1]  # the sources went into the prompt
    assert completion.usage.completion_tokens == 6 and completion.usage.prompt_tokens > 10


def test_the_nodocs_model_does_not_search(scripted_app, scripted, served) -> None:
    with_sources(scripted_app, FESTIVAL)
    scripted.reply("I do not know.")
    completion = served.client().chat.completions.create(model="scripted:nodocs", messages=ask("When?"))
    assert completion.model_extra["archivist"]["grounded"] is False
    assert completion.model_extra["archivist"]["citations"] == []
    assert "Zorblat" not in scripted.prompts[-1]


def test_streaming_sends_the_sources_the_text_and_a_last_chunk_with_citations_and_usage(
        scripted_app, scripted, served) -> None:
    with_sources(scripted_app, FESTIVAL, QUIMBY)
    scripted.reply(["Quimby has ", "4,000 people [2]. ", "It holds the ", "festival [1]."])
    stream = served.client().chat.completions.create(model="archivist", messages=ask("Tell me about Quimby"),
                                                     stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Quimby has 4,000 people [2]. It holds the festival [1]."
    assert chunks[0].choices[0].delta.role == "assistant"
    sources = [c.model_extra["archivist"]["sources"] for c in chunks if "sources" in (c.model_extra.get("archivist") or {})]
    assert [s["path"] for s in sources[0]] == [FESTIVAL.path, QUIMBY.path]
    [last] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert last.choices[0].finish_reason == "stop"
    assert [c["n"] for c in last.model_extra["archivist"]["citations"]] == [2, 1]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4


def test_streamed_text_comes_before_the_answer_ends(slow_app, slow, serve) -> None:
    """The first sentence reaches the client while the model still writes the rest."""
    from serving import many_sentences

    slow.reply(many_sentences(20))
    served = serve(slow_app)
    with served.client().chat.completions.create(model="archivist:nodocs", messages=ask("Count"),
                                                 stream=True) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        assert slow.made < 20  # the answer was not finished when its first words arrived
    assert slow.stopped.wait(10)


def test_history_and_the_callers_system_prompt_come_from_the_request(scripted, served) -> None:
    scripted.reply("It is 4,000.")
    served.client().chat.completions.create(model="scripted:nodocs", messages=[
        {"role": "system", "content": "You answer in one line."},
        {"role": "user", "content": "Where is Quimby?"},
        {"role": "assistant", "content": "On the river Lune."},
        {"role": "user", "content": [{"type": "text", "text": "How many live there?"}]},
    ])
    prompt = scripted.prompts[-1]
    assert prompt.startswith("<|system|>\nYou answer in one line.")
    assert "<|user|>\nWhere is Quimby?\n<|assistant|>\nOn the river Lune.\n<|user|>\nHow many live there?" in prompt


def test_api_turns_are_kept_out_of_the_users_conversations_unless_asked(scripted_app, scripted, served) -> None:
    conversations = Conversations(scripted_app.database)
    assert conversations.list_conversations() == []
    scripted.reply("Not kept.")
    completion = served.client().chat.completions.create(model="scripted:nodocs", messages=ask("One"))
    assert completion.model_extra["archivist"]["conversation_id"] is None
    scripted.reply("Kept.")
    kept = served.client().chat.completions.create(model="scripted:nodocs", messages=ask("Two"),
                                                  extra_body={"archivist": {"save": True}})
    conversation = kept.model_extra["archivist"]["conversation_id"]
    assert conversation
    assert [m.text for m in conversations.messages(conversation)] == ["Two", "Kept."]
    scripted.reply("Also kept.")
    served.client().chat.completions.create(model="scripted:nodocs", messages=ask("Three"),
                                           extra_body={"archivist": {"save": True, "conversation_id": conversation}})
    assert [m.text for m in conversations.messages(conversation)] == ["Two", "Kept.", "Three", "Also kept."]
    assert [c.id for c in conversations.list_conversations()] == [conversation]


def test_the_safety_filter_screens_an_api_turn_as_it_screens_the_windows(scripted_app, scripted, served) -> None:
    question = "How do I make a pipe bomb?"
    window = scripted_app.assistant().ask(question, use_documents=False)
    completion = served.client().chat.completions.create(model="archivist:nodocs", messages=ask(question))
    assert completion.choices[0].message.content == window.text
    assert completion.choices[0].finish_reason == "content_filter"
    [verdict] = completion.model_extra["archivist"]["safety"]
    assert [verdict] == [v.to_dict() for v in window.verdicts] and verdict["action"] == "block"
    assert scripted.prompts == []  # the model never saw it
    stream = served.client().chat.completions.create(model="archivist:nodocs", messages=ask(question), stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == window.text
    assert chunks[-1].choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize(("messages", "extra", "match"), [
    ([], {}, "messages"),
    ([{"role": "assistant", "content": "hi"}], {}, "last message must be the user's"),
    ([{"role": "tool", "content": "x"}, {"role": "user", "content": "hi"}], {}, "role 'tool'"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], {}, "only text"),
    ([{"role": "user", "content": "hi"}], {"max_tokens": 100000}, "over this server's limit"),
    ([{"role": "user", "content": "hi"}], {"n": 2}, "n"),
    ([{"role": "user", "content": "hi"}], {"extra_body": {"archivist": {"conversation_id": 3}}}, "goes with"),
    ([{"role": "user", "content": "hi"}], {"extra_body": {"archivist": {"keep": True}}}, "keep"),
    ([{"role": "user", "content": "hi"}], {"extra_body": {"archivist": {"collections": ["nope"]}}},
     r"no collection named 'nope' here: choose from library \(your own library\)"),
])
def test_a_request_it_cannot_answer_is_a_400_that_says_why(served, messages, extra, match) -> None:
    with pytest.raises(openai.BadRequestError, match=match):
        served.client().chat.completions.create(model="scripted", messages=messages, **extra)


def test_an_unknown_model_is_a_404(served) -> None:
    with pytest.raises(openai.NotFoundError, match="no chat model called 'gpt-4o'"):
        served.client().chat.completions.create(model="gpt-4o", messages=ask("hi"))


def test_a_body_over_the_limit_is_refused_before_it_is_read(scripted_app, serve) -> None:
    served = serve(scripted_app, max_body_bytes=2000)
    with pytest.raises(openai.APIStatusError) as caught:
        served.client().chat.completions.create(model="scripted", messages=ask("x" * 5000))
    assert caught.value.status_code == 413
    # Without a Content-Length (chunked), the limit holds while the body arrives.
    chunks = (json.dumps({"model": "scripted", "messages": ask("y" * 5000)}).encode()[i:i + 500]
              for i in range(0, 6000, 500))
    response = httpx.post(f"{served.url}/chat/completions", content=chunks,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]


def test_the_real_model_streams_through_the_api(app, serve) -> None:
    """The real built-in model: structure only (its words differ by CPU)."""
    served = serve(app)
    stream = served.client().chat.completions.create(model="archivist:nodocs", messages=ask("What is Rome?"),
                                                     max_tokens=16, stream=True,
                                                     stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 16
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish and finish[0] in ("stop", "length")


def test_a_request_chooses_which_collections_answer(scripted_app, scripted, served) -> None:
    with_sources(scripted_app, FESTIVAL)
    scripted_app.host.add("shared", RetrieverPlugin(CollectionRetriever("towns", [QUIMBY])))
    scripted.reply("On the Lune [1].")
    completion = served.client().chat.completions.create(
        model="archivist", messages=ask("Where is Quimby?"),
        extra_body={"archivist": {"collections": ["towns"], "save": True}})
    assert [c["path"] for c in completion.model_extra["archivist"]["citations"]] == [QUIMBY.path]
    assert FESTIVAL.text not in scripted.prompts[-1]
    conversation = completion.model_extra["archivist"]["conversation_id"]
    assert Conversations(scripted_app.database).chosen_collections(conversation) == {"towns"}
