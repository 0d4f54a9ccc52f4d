"""Which action each category gets at each stage, and what the user is told.

Defaults are merged under the user's ``[safety]`` settings (see docs/safety.md)::

    [safety]
    threshold = 0.5            # learned head's warn threshold (default: the one shipped with it);
                               # or a table per stage: threshold = {input = 0.5, output = 0.7}
    block_threshold = 0.8      # from here a learned flag takes its category's action (block);
                               # below it, down to `threshold`, it only warns. Or per stage.
    [safety.thresholds.hate]   # per category, over the two above (either key may be left out)
    warn = 0.4
    block = 0.7
    learned = true             # use the learned head (false: rules and lexicons only)
    judge = false              # ask the chat model about what the head is unsure of
    max_chars = 32768          # longer texts are blocked unscreened (see filter.py)
    [safety.actions.personal_data]
    input = "allow"            # one stage ...
    [safety.actions]
    sexual = "warn"            # ... or every stage at once

``sexual_minors`` is always blocked whatever the settings say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archivist import Action, Stage
from archivist_safety.findings import (
    CATEGORIES,
    DANGEROUS,
    DESTRUCTIVE_COMMAND,
    HATE,
    PERSONAL_DATA,
    PROMPT_INJECTION,
    SELF_HARM,
    SEXUAL,
    SEXUAL_MINORS,
    VIOLENCE,
)

I, P, O = Stage.INPUT, Stage.PASSAGE, Stage.OUTPUT  # noqa: E741  (one-letter names keep the table below readable)
A, W, R, B = Action.ALLOW, Action.WARN, Action.REDACT, Action.BLOCK

DEFAULT_ACTIONS: dict[str, dict[Stage, Action]] = {
    HATE: {I: B, P: W, O: B},
    SEXUAL: {I: W, P: W, O: B},
    SEXUAL_MINORS: {I: B, P: B, O: B},
    VIOLENCE: {I: B, P: W, O: B},
    SELF_HARM: {I: B, P: W, O: B},
    DANGEROUS: {I: B, P: W, O: B},
    PERSONAL_DATA: {I: W, P: R, O: R},
    PROMPT_INJECTION: {I: W, P: R, O: W},
    DESTRUCTIVE_COMMAND: {I: A, P: A, O: W},
}

REASONS = {
    HATE: "it contains hateful or harassing language",
    SEXUAL: "it contains sexual content",
    SEXUAL_MINORS: "it involves sexual content about minors, which is never allowed",
    VIOLENCE: "it asks for or threatens violence against people",
    SELF_HARM: "it concerns self-harm",
    DANGEROUS: "it asks for help with weapons, drugs, malware or another crime",
    PERSONAL_DATA: "it contains or asks for someone's personal data",
    PROMPT_INJECTION: "it contains instructions that try to override the assistant's own",
    DESTRUCTIVE_COMMAND: ("it suggests a command that deletes or overwrites files or disks wholesale; "
                          "check it before you run it"),
}

SUPPORT_MESSAGE = (
    "It sounds like you might be going through something really painful, and you don't have to "
    "face it alone: please reach out to someone you trust or to a crisis line (in the US call or "
    "text 988, in the UK and Ireland call Samaritans on 116 123, elsewhere find a free local line "
    "at findahelpline.com), and if you are in immediate danger call your local emergency number."
)


def block_message(category: str, stage: Stage) -> str:
    """The one sentence a user is shown in place of blocked text."""
    if category == SELF_HARM:
        return SUPPORT_MESSAGE
    what = {
        Stage.INPUT: "I can't help with this request",
        Stage.PASSAGE: "A passage from your documents was left out",
        Stage.OUTPUT: "I stopped this answer",
    }[stage]
    return f"{what} because {REASONS.get(category, 'it was flagged by the safety filter')}."


@dataclass
class Policy:
    actions: dict[str, dict[Stage, Action]] = field(default_factory=lambda: {c: dict(s) for c, s in DEFAULT_ACTIONS.items()})
    threshold: float | None = None  # None: the learned head's own (0.6 for the rules-only hate layer)
    learned: bool = True
    stage_thresholds: dict[Stage, float] = field(default_factory=dict)  # per-stage overrides
    block_threshold: float | None = None  # None: the learned head's own block threshold
    stage_block_thresholds: dict[Stage, float] = field(default_factory=dict)
    # Per category: {"warn": t, "block": t}, over the stage and global values.
    category_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    judge: bool = False  # ask the chat model about texts the head is unsure of (judge.py)
    judge_margin: float = 0.2  # "unsure": the head's score within this of its threshold
    judge_timeout_s: float = 2.0  # under the host's 5 s screen limit, with room for the rest
    # The longest text screened; a longer one is blocked as too long to check. Measured on
    # 2 busy cores, the slowest text of this length we could write takes 1.3 s to screen,
    # a quarter of the host's 5 s limit (docs/safety.md, "Fail closed").
    max_chars: int = 32768

    def threshold_for(self, stage: Stage | None) -> float | None:
        """The threshold set for ``stage`` (a table entry, else the single value), or None."""
        if stage is not None and stage in self.stage_thresholds:
            return self.stage_thresholds[stage]
        return self.threshold

    def block_threshold_for(self, stage: Stage | None) -> float | None:
        """The block threshold set for ``stage`` (a table entry, else the single value), or None."""
        if stage is not None and stage in self.stage_block_thresholds:
            return self.stage_block_thresholds[stage]
        return self.block_threshold

    def warn_at(self, category: str, stage: Stage | None, head_default: float) -> float:
        """The learned score from which a text of ``category`` is flagged (warned at least)."""
        if "warn" in self.category_thresholds.get(category, {}):
            return self.category_thresholds[category]["warn"]
        set_for_stage = self.threshold_for(stage)
        return head_default if set_for_stage is None else set_for_stage

    def block_at(self, category: str, stage: Stage | None, head_default: float) -> float:
        """The learned score from which a flag of ``category`` takes its action in full
        (below it, a blocking action is softened to a warning)."""
        if "block" in self.category_thresholds.get(category, {}):
            return self.category_thresholds[category]["block"]
        set_for_stage = self.block_threshold_for(stage)
        return head_default if set_for_stage is None else set_for_stage

    def action(self, category: str, stage: Stage) -> Action:
        if category == SEXUAL_MINORS:
            return Action.BLOCK
        return self.actions.get(category, {}).get(stage, Action.WARN)

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> Policy:
        """Defaults with the user's ``[safety]`` table merged over them; bad values raise ValueError."""
        policy = cls()
        settings = settings or {}
        threshold = settings.get("threshold")
        if isinstance(threshold, dict):  # {input = 0.6, output = 0.7}
            policy.stage_thresholds = {Stage(k): float(v) for k, v in threshold.items()}
        elif threshold is not None:
            policy.threshold = float(threshold)
        block = settings.get("block_threshold")
        if isinstance(block, dict):  # {input = 0.8, output = 0.9}
            policy.stage_block_thresholds = {Stage(k): float(v) for k, v in block.items()}
        elif block is not None:
            policy.block_threshold = float(block)
        for category, value in (settings.get("thresholds") or {}).items():
            if category not in CATEGORIES:
                raise ValueError(f"unknown safety category {category!r} (known: {', '.join(CATEGORIES)})")
            if isinstance(value, (int, float)):
                value = {"block": value}
            if not isinstance(value, dict) or not set(value) <= {"warn", "block"}:
                raise ValueError(f"safety.thresholds.{category} must be a number (block) or a table "
                                 "with warn and/or block")
            policy.category_thresholds[category] = {k: float(v) for k, v in value.items()}
        policy.learned = bool(settings.get("learned", policy.learned))
        policy.judge = bool(settings.get("judge", policy.judge))
        policy.judge_margin = float(settings.get("judge_margin", policy.judge_margin))
        if not 0.0 <= policy.judge_margin <= 1.0:
            raise ValueError(f"safety.judge_margin must be between 0 and 1, not {policy.judge_margin}")
        policy.judge_timeout_s = float(settings.get("judge_timeout_s", policy.judge_timeout_s))
        if policy.judge_timeout_s <= 0:
            raise ValueError(f"safety.judge_timeout_s must be above 0, not {policy.judge_timeout_s}")
        policy.max_chars = int(settings.get("max_chars", policy.max_chars))
        if policy.max_chars < 1:
            raise ValueError(f"safety.max_chars must be at least 1, not {policy.max_chars}")
        for category, value in (settings.get("actions") or {}).items():
            if category not in CATEGORIES:
                raise ValueError(f"unknown safety category {category!r} (known: {', '.join(CATEGORIES)})")
            stages = policy.actions.setdefault(category, {})
            if isinstance(value, str):
                for stage in Stage:
                    stages[stage] = Action(value)
            elif isinstance(value, dict):
                for stage_name, action in value.items():
                    stages[Stage(stage_name)] = Action(action)
            else:
                raise ValueError(f"safety.actions.{category} must be an action or a table of stage = action")
        return policy
