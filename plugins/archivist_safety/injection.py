"""Prompt-injection markers and hidden text: instructions a document should not carry.

Retrieved passages are data, not instructions. A passage that tells the model to drop
its instructions, change its role, reveal its prompt or send data elsewhere, or that
hides text from the reader (zero-width and bidi control characters, HTML comments,
invisible CSS), is neutralised: the offending sentence is replaced by a marker and
hidden characters are removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from archivist_safety.findings import PROMPT_INJECTION, Finding

LABEL = "[instruction removed]"

_PREVIOUS = r"(?:all |any |the |your |my |these |those |of |every )*(?:previous|prior|above|earlier|preceding|former|original|initial|system|safety|existing|old)"
_RULES = r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|messages?|context|commands?|guardrails|restrictions|programming|constraints|policies|filters)"

MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "override",
        re.compile(
            rf"(?i)\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect)\s+"
            rf"(?:{_PREVIOUS}\s+{_RULES}|(?:all|your|any)\s+(?:of\s+)?(?:your\s+|the\s+)?{_RULES})"
        ),
    ),
    ("forget_all", re.compile(r"(?i)\bforget (?:everything|all(?: that)?) (?:you(?:'ve| have)? (?:been told|learned|know)|above|before)")),
    (
        "role_change",
        re.compile(
            r"(?i)\b(?:you are|you're|act as|pretend (?:to be|you are)|from now on,? you(?: are|'re| will be)?)\s+"
            r"(?:now\s+)?(?:an? )?(?:DAN\b|unrestricted|unfiltered|uncensored|jailbroken|evil|developer mode|in developer mode|"
            r"free from (?:all |any )?(?:rules|restrictions)|without (?:any )?(?:rules|restrictions|limits|filters))"
        ),
    ),
    ("jailbreak", re.compile(r"(?i)\b(?:do anything now|developer mode (?:enabled|on)|jailbreak(?:ed)? mode|DAN mode)\b")),
    (
        "new_instructions",
        re.compile(r"(?i)(?:^|[\s>#*])(?:new|updated|real|actual|secret|hidden) (?:system )?instructions?\s*:"),
    ),
    (
        "prompt_leak",
        re.compile(
            r"(?i)\b(?:reveal|print|show|repeat|output|leak|display|tell me|give me|write out)\s+(?:me\s+)?(?:your|the)\s+"
            r"(?:(?:full|entire|original|hidden|secret|initial)\s+)?(?:system prompt|system message|instructions|initial prompt|prompt)\b"
        ),
    ),
    (
        "chat_template",
        re.compile(r"(?i)<\|(?:im_start|im_end|system|user|assistant|endoftext|end)\|>|\[/?INST\]|<</?SYS>>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$", re.M),
    ),
    (
        "exfiltration",
        re.compile(
            r"(?i)\b(?:send|post|upload|forward|email|transmit|exfiltrate)\b[^.\n]{0,60}\b(?:to|at)\s+(?:https?://|www\.|[\w.-]+@[\w.-]+\.\w+)"
            r"|!\[[^\]]*\]\(https?://[^)\s]*\?[^)\s]*=[^)\s]*\)"
        ),
    ),
    (
        "addressed_to_model",
        re.compile(
            r"(?i)\b(?:attention|note|message|instruction)s?\s+(?:to|for)\s+(?:the\s+)?(?:ai|assistant|language model|llm|chatbot|model)\b"
            r"|\b(?:if you are|as) an? (?:ai|language model|llm|assistant)(?: reading this)?,?\s+(?:you must|please|ignore|do not|don't|always|never)\b"
        ),
    ),
)

HIDDEN_CHARS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]+")
HIDDEN_MARKUP: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("html_comment", re.compile(r"<!--.*?-->", re.S)),
    (
        "invisible_css",
        re.compile(
            r"(?is)<(\w+)[^>]*style\s*=\s*[\"'][^\"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\s*[;\"']"
            r"|color\s*:\s*(?:white|#fff(?:fff)?)\b|opacity\s*:\s*0(?:\.0+)?\s*[;\"'])[^>]*>.*?</\1>"
        ),
    ),
)

_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def find_injection(text: str) -> Iterator[Finding]:
    """Spans of ``text`` that carry instructions aimed at the model or hide text."""
    for m in HIDDEN_CHARS.finditer(text):
        yield Finding(PROMPT_INJECTION, m.start(), m.end(), 0.9, "hidden_text", "")
    for kind, pattern in HIDDEN_MARKUP:
        for m in pattern.finditer(text):
            yield Finding(PROMPT_INJECTION, m.start(), m.end(), 0.9, kind, LABEL)
    for kind, pattern in MARKERS:
        for m in pattern.finditer(text):
            start, end = _sentence_around(text, m.start(), m.end())
            yield Finding(PROMPT_INJECTION, start, end, 0.95, kind, LABEL)


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a marker to its sentence, so the whole injected instruction is removed."""
    left = 0
    for m in _SENTENCE_END.finditer(text, 0, start):
        left = m.end()
    while left < start and text[left].isspace():
        left += 1
    stop = _SENTENCE_END.search(text, end)
    right = stop.end() if stop else len(text)
    if stop and text[stop.start()] == "\n":
        right = stop.start()
    return left, right
