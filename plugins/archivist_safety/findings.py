"""What a detector reports: one category found at one span of the screened text."""

from __future__ import annotations

from dataclasses import dataclass

# Category names used in verdicts and in the [safety.actions] settings table.
HATE = "hate"
SEXUAL = "sexual"
SEXUAL_MINORS = "sexual_minors"
VIOLENCE = "violence"
SELF_HARM = "self_harm"
DANGEROUS = "dangerous"
PERSONAL_DATA = "personal_data"
PROMPT_INJECTION = "prompt_injection"
DESTRUCTIVE_COMMAND = "destructive_command"

CATEGORIES = (
    HATE,
    SEXUAL,
    SEXUAL_MINORS,
    VIOLENCE,
    SELF_HARM,
    DANGEROUS,
    PERSONAL_DATA,
    PROMPT_INJECTION,
    DESTRUCTIVE_COMMAND,
)


@dataclass(frozen=True)
class Finding:
    """``category`` found in ``text[start:end]`` with confidence ``score`` (0..1).

    ``kind`` names the detector rule (``"email"``, ``"card"``, ``"hidden_text"``...);
    ``label`` is what replaces the span when it is redacted.
    """

    category: str
    start: int
    end: int
    score: float
    kind: str
    label: str = ""
    # A learned finding's score for the text read with the sentence before it, where the
    # filter had one and the text's own score reached a block (see filter.findings).
    context_score: float | None = None
