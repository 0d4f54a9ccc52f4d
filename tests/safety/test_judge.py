"""The optional model judge: asked only when the head is unsure, through the real model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from archivist import Action, Stage
from archivist.application import Application
from archivist.model_service import MODEL_SETTING
from archivist_models.embedder import EMBEDDER_DIR
from archivist_safety.command import build_group
from archivist_safety.filter import ArchivistSafetyFilter
from archivist_safety.judge import ModelJudge, judge_messages, read_judgement
from archivist_safety.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".cache" / "wheels"
SAFETY_HOME = ROOT / ".cache" / "test-safety-home"
ENCODER = EMBEDDER_DIR

# The band these tests use, and texts whose head scores (warn threshold 0.64) fall inside it
# below the threshold (the head allows them: 0.54, 0.38) or far outside it (0.07, 0.05).
# test_the_examples_still_fall_where_the_tests_need_them says when a rebuilt head moves them.
MARGIN = 0.3
UNSURE = ["How can I make someone feel guilty?", "What's the best way to lie to my parents?"]
SURE = ["How do I shoot a deer?", "How do I poison the weeds in my garden?"]


@pytest.fixture(scope="module", autouse=True)
def _encoder_built() -> None:
    """The sentence encoder in SAFETY_HOME, built once from the pinned wheel if missing."""
    judged_filter(None)


class Recorder:
    """A judge that records what it was asked and answers as told (to pin the band)."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, Stage]] = []

    def __call__(self, text: str, stage: Stage) -> bool | None:
        self.asked.append((text, stage))
        return self.answer


def judged_filter(judge: object, **settings: object) -> ArchivistSafetyFilter:
    chosen = {"judge": True, "judge_margin": MARGIN, **settings}
    f = ArchivistSafetyFilter(Policy.from_settings(chosen), SAFETY_HOME, WHEELS, judge)  # type: ignore[arg-type]
    f.warm_up()
    assert f.learned is not None and f.learned.encoder is not None, f.learned and f.learned.error
    return f


@pytest.mark.parametrize("reply, verdict", [
    ("unsafe", True), ("Unsafe.", True), ("safe", False), (" Safe", False), ("The word \"safe", False),
    ("not safe", True), ("Yes", True), ("no", False), ("I cannot say", None), ("", None), (None, None),
])
def test_the_judges_reply_is_read_as_unsafe_safe_or_nothing(reply: str | None, verdict: bool | None) -> None:
    assert read_judgement(reply) is verdict


def test_the_examples_still_fall_where_the_tests_need_them() -> None:
    f = judged_filter(None)
    assert f.learned is not None and f.learned.head is not None
    t = f.learned.head.threshold
    for text in UNSURE:
        p = f.learned.score(text)[0]
        assert t - MARGIN <= p < t, f"{text!r} scores {p:.3f}: pick another unsure example"
    for text in SURE:
        p = f.learned.score(text)[0]
        assert abs(p - t) > MARGIN + 0.05, f"{text!r} scores {p:.3f}: pick another sure example"


def test_the_judge_is_asked_only_inside_the_band_around_the_threshold() -> None:
    recorder = Recorder(None)
    f = judged_filter(recorder)
    for text in UNSURE + SURE:
        f.screen(text, Stage.INPUT)
    assert [t for t, _ in recorder.asked] == UNSURE
    # a wider band takes in the sure ones too; margin 0 asks about none of these
    wide = Recorder(None)
    judged_filter(wide, judge_margin=1.0).screen(SURE[0], Stage.INPUT)
    assert wide.asked == [(SURE[0], Stage.INPUT)]
    narrow = Recorder(None)
    for text in UNSURE + SURE:
        judged_filter(narrow, judge_margin=0.0).screen(text, Stage.OUTPUT)
    assert narrow.asked == []


def test_the_judges_verdict_decides_inside_the_band_and_no_verdict_leaves_the_head_to_decide() -> None:
    text = UNSURE[0]  # the head allows it (just below the threshold)
    assert judged_filter(Recorder(None)).screen(text, Stage.INPUT).action is Action.ALLOW
    blocked = judged_filter(Recorder(True)).screen(text, Stage.INPUT)
    assert blocked.action is Action.BLOCK
    assert "The chat model was asked and judged it unsafe." in blocked.reason
    assert judged_filter(Recorder(False)).screen(text, Stage.INPUT).action is Action.ALLOW


def test_the_judge_is_off_unless_turned_on() -> None:
    recorder = Recorder(True)
    f = ArchivistSafetyFilter(Policy.from_settings({}), SAFETY_HOME, WHEELS, recorder)
    f.warm_up()
    assert f.screen(UNSURE[0], Stage.INPUT).action is Action.ALLOW and recorder.asked == []


@pytest.mark.parametrize("settings, message", [
    ({"judge_margin": 1.5}, "judge_margin"), ({"judge_timeout_s": 0}, "judge_timeout_s"),
])
def test_bad_judge_settings_are_refused_with_their_name(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.from_settings(settings)


def test_with_no_model_loaded_the_judge_gets_no_answer_and_nothing_loads(app: Application) -> None:
    judge = ModelJudge(app.host.context.ask_model)
    assert judge(UNSURE[0], Stage.INPUT) is None and judge.asked == 1 and judge.answered == 0
    assert app._model is None


def test_the_real_model_judges_through_the_plugin_context(app: Application) -> None:
    """The whole path: the safety plugin registered by the app with ``judge = true`` asks
    the loaded model (the built-in 135M one, whose verdicts are poor but real) and its
    reply decides inside the band."""
    app.config["safety"] = {"judge": True, "judge_margin": MARGIN}
    # the sentence encoder the head reads, shared with the other safety tests
    (app.paths.models / ENCODER).symlink_to(SAFETY_HOME / "models" / ENCODER, target_is_directory=True)
    app.load_model()
    filters = app.host.safety_filters()
    (f,) = [c.obj for c in filters if c.plugin == "safety"]
    assert isinstance(f.judge, ModelJudge)
    f.warm_up()
    replies = []
    for text in UNSURE:
        replies.append(app.host.context.ask_model(judge_messages(text, Stage.INPUT), max_new_tokens=4, timeout_s=10))
        verdict = f.screen(text, Stage.INPUT)
        said = read_judgement(replies[-1])
        if said is True:
            assert verdict.action is Action.BLOCK and "judged it unsafe" in verdict.reason
        elif said is False:
            assert verdict.action is Action.ALLOW
    assert all(isinstance(r, str) and r for r in replies)
    assert f.judge.asked == len(UNSURE)


def test_a_judge_past_its_time_leaves_the_head_to_decide(app: Application, caplog: pytest.LogCaptureFixture) -> None:
    app.load_model()
    with caplog.at_level(logging.WARNING):
        reply = app.host.context.ask_model(judge_messages(UNSURE[0], Stage.INPUT), timeout_s=1e-6)
    assert reply is None and "no answer" in caplog.text
    f = judged_filter(ModelJudge(app.host.context.ask_model, timeout_s=1e-6))
    assert f.screen(UNSURE[0], Stage.INPUT).action is Action.ALLOW  # the head's verdict


def test_cli_judge_loads_the_chosen_model_and_says_so_when_there_is_none(app: Application, home: Path) -> None:
    runner = CliRunner()
    group = build_group({}, SAFETY_HOME, ask=app.host.context.ask_model)
    out = runner.invoke(group, ["check", "--judge", "--json"], input=UNSURE[1])
    assert out.exit_code == 0, out.output
    assert app._model is not None  # --judge loaded it
    empty = Application(home / "empty")
    try:
        refused = runner.invoke(build_group({}, SAFETY_HOME, ask=empty.host.context.ask_model),
                                ["check", "--judge"], input=UNSURE[1])
        assert refused.exit_code != 0 and "--judge: the chat model could not be loaded" in refused.output
    finally:
        empty.close()


class Wrapped:
    """The real ModelJudge, with a note of each stage it was asked at and what it said."""

    def __init__(self, judge: ModelJudge) -> None:
        self.judge = judge
        self.calls: list[tuple[Stage, bool | None]] = []

    def __call__(self, text: str, stage: Stage) -> bool | None:
        said = self.judge(text, stage)
        self.calls.append((Stage(stage), said))
        return said


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "model process"])
def test_a_chat_turn_with_the_judge_on_every_sentence_streams_to_the_end(
    home: Path, default_model_dir: Path, isolated: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """While the answer streams, each sentence's screen asks the same model aside (from
    the host's guard thread, the stream suspended); nothing waits on anything, the plugin
    stays enabled, and the turn finishes."""
    from archivist.types import GenerationOptions

    application = Application(home, isolate_model=isolated, allowed_plugins={"safety"})
    try:
        application.config["safety"] = {"judge": True, "judge_margin": 1.0, "judge_timeout_s": 4.0}
        (application.paths.models / ENCODER).symlink_to(SAFETY_HOME / "models" / ENCODER, target_is_directory=True)
        application.settings().set(MODEL_SETTING, str(default_model_dir))
        (f,) = [c.obj for c in application.host.safety_filters()]
        f.warm_up()
        f.judge = wrapped = Wrapped(f.judge)
        with caplog.at_level(logging.WARNING):
            events = list(application.assistant().stream(
                "Name three colours of the rainbow.", options=GenerationOptions(max_new_tokens=40),
                use_documents=False))
        assert events[-1].kind == "done" and events[-1].answer is not None
        assert application.host.enabled("safety")
        stages = [stage for stage, _ in wrapped.calls]
        assert stages[0] is Stage.INPUT and Stage.OUTPUT in stages
        # the model answered every question, none timed out or failed
        assert wrapped.judge.asked == len(wrapped.calls)
        assert "gave a plugin no answer" not in caplog.text and "timed out" not in caplog.text
    finally:
        application.close()
