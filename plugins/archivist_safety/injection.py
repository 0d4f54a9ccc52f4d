"""Prompt-injection markers and hidden text: instructions a document should not carry.

Retrieved passages are data, not instructions. A passage that tells the model to drop
its instructions, change its role, reveal its prompt or send data elsewhere, or that
hides text from the reader (zero-width and bidi control characters, HTML comments,
invisible CSS), is neutralised: the offending sentence is replaced by a marker and
hidden characters are removed.

The markers are matched twice. First on the text as written. Then on its *letters
only*: lower-cased, compatibility forms folded (NFKC: full-width and styled letters),
hidden characters dropped, everything that is not a letter removed. So an instruction
spelled "I-g-n-o-r-e p-r-e-v-i-o-u-s", broken up by zero-width characters, or written in
full-width letters still reads "ignorepreviousinstructions". The same letters-only phrases
cover French, German, Spanish, Italian and Portuguese. A match there is mapped back to
the characters of the original text it came from.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterator

from archivist_safety.findings import PROMPT_INJECTION, Finding

LABEL = "[instruction removed]"

_PREVIOUS = r"(?:all |any |the |your |my |these |those |of |every )*(?:previous|prior|above|earlier|preceding|former|original|initial|system|safety|existing|old)"
_RULES = r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|messages?|context|commands?|guardrails|restrictions|programming|constraints|policies|filters)"

MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "override",
        re.compile(
            rf"(?i)(?<!\bnot\s)(?<!n't\s)(?<!\bnever\s)\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect)\s+"
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
        re.compile(r"(?i)<\|(?:im_start|im_end|system|user|assistant|endoftext|end)\|>|\[/?INST\]|<</?SYS>>|^[^\S\n]*#{2,}[^\S\n]*(?:system|instruction)s?[^\S\n]*:?[^\S\n]*$", re.M),
    ),
    (
        "exfiltration",
        re.compile(
            r"(?i)\b(?:send|post|upload|forward|email|transmit|exfiltrate)\b[^.\n]{0,60}\b(?:to|at)\s+(?:https?://|www\.|[\w.-]+@[\w.-]+\.\w+)"
            # A markdown image whose URL carries a query (data sent as it loads). Each
            # part stops at the character that ends it, and is bounded, so a long text of
            # unclosed links is read once, not once per "?" (that took minutes).
            r"|!\[[^\]]{0,500}\]\(https?://[^)\s?]{0,2000}\?[^)\s=]{0,2000}=[^)\s]{0,2000}\)"
        ),
    ),
    (
        "addressed_to_model",
        re.compile(
            r"(?i)\b(?:attention|note|message|instruction)s?\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+)?"
            r"(?:ai\s+)?(?:ai|assistants?|language models?|llms?|chatbots?|models?)\b"
            r"|\b(?:if you are|as) an? (?:ai|language model|llm|assistant)(?: reading this)?,?\s+(?:you must|please|ignore|do not|don't|always|never)\b"
        ),
    ),
)

# Letters-only phrases (see the module docstring): the verbs, the "earlier" words and
# the rule nouns of an override in six languages, and a task hijack. They are matched on
# text with every non-letter removed, so they are written without spaces.
_SQ_VERB = (r"(?:ignore|ignorez|ignoriere|ignorier|ignora|ignoriert|disregard|forget|override|bypass|oublie|oubliez"
            r"|vergiss|vergessen|olvida|olvide|dimentica|esquece|esqueca|nichtbeachten|missachte)")
_SQ_FILL = r"(?:all|any|the|your|my|these|every|of|tout|toutes|tous|les|vos|tes|alle|die|deine|ihre|las|todas|tutte|le|as|todas)*"
_SQ_EARLIER = (r"(?:previous|prior|above|earlier|preceding|system|original|precedentes|precedents|anterieures"
               r"|vorherigen?|vorigen?|bisherigen?|obigen?|anteriores|anteriori|precedenti)")
_SQ_RULES = (r"(?:instructions?|prompts?|rules|directions?|directives?|commands?|guidelines|consignes|regles"
             r"|anweisungen|befehle|regeln|instrucciones|reglas|istruzioni|regole|instrucoes|regras)")
SQUEEZED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("override", re.compile(rf"{_SQ_VERB}{_SQ_FILL}{_SQ_EARLIER}{_SQ_FILL}{_SQ_RULES}")),
    ("override", re.compile(rf"{_SQ_VERB}{_SQ_FILL}{_SQ_RULES}{_SQ_EARLIER}")),  # French, Spanish, Italian order
    ("override", re.compile(rf"{_SQ_EARLIER}{_SQ_RULES}(?:ignorieren|ignorer|ignorar|ignorare|vergessen|oublier)")),
    ("task_hijack", re.compile(r"your(?:real|actual|true|new|only|secret)(?:task|job|goal|purpose|instructions?|mission)(?:is|are|now)")),
    ("role_change", re.compile(r"(?:youarenow|fromnowonyouare|actas)(?:an?)?(?:dan|unrestricted|unfiltered|uncensored|jailbroken)")),
)

HIDDEN_CHARS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]+")
# An element styled invisible, up to the end of its opening tag (bounded: an opening tag
# that never ends must not be read to the end of the text from every "<"); its closing
# tag is found by invisible_elements (a ".*?</\1>" here read to the end of the text again
# from every unclosed one).
INVISIBLE_TAG = re.compile(
    r"(?is)<(\w+)[^>]{0,2000}style\s*=\s*[\"'][^\"']{0,2000}(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\s*[;\"']"
    r"|color\s*:\s*(?:white|#fff(?:fff)?)\b|opacity\s*:\s*0(?:\.0+)?\s*[;\"'])[^>]{0,2000}>"
)

_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def find_injection(text: str) -> Iterator[Finding]:
    """Spans of ``text`` that carry instructions aimed at the model or hide text."""
    for m in HIDDEN_CHARS.finditer(text):
        yield Finding(PROMPT_INJECTION, m.start(), m.end(), 0.9, "hidden_text", "")
    for start, end in html_comments(text):
        yield Finding(PROMPT_INJECTION, start, end, 0.9, "html_comment", LABEL)
    for start, end in invisible_elements(text):
        yield Finding(PROMPT_INJECTION, start, end, 0.9, "invisible_css", LABEL)
    found: list[tuple[int, int]] = []
    sentences = _Sentences(text)
    for kind, pattern in MARKERS:
        for m in pattern.finditer(text):
            start, end = sentences.around(m.start(), m.end())
            found.append((start, end))
            yield Finding(PROMPT_INJECTION, start, end, 0.95, kind, LABEL)
    letters, origin = letters_only(text)
    for kind, pattern in SQUEEZED:
        for m in pattern.finditer(letters):
            start, end = sentences.around(origin[m.start()], origin[m.end() - 1] + 1)
            if not any(s <= start and end <= e for s, e in found):  # not already marked as written
                found.append((start, end))
                yield Finding(PROMPT_INJECTION, start, end, 0.9, kind, LABEL)


def letters_only(text: str) -> tuple[str, list[int]]:
    """``text``'s letters, lower-cased and NFKC-folded, accents and hidden characters
    dropped, with the index in ``text`` each one came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isalpha():
                out.append(ch.lower())
                origin.append(i)
            continue
        for c in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch)):
            if c.isalpha() and not unicodedata.combining(c):
                out.append(c.lower())
                origin.append(i)
    return "".join(out), origin


def html_comments(text: str) -> Iterator[tuple[int, int]]:
    """Where ``<!-- ... -->`` comments are, as ``<!--.*?-->`` (DOTALL) finds them, in one
    pass: the regex looked for an end from every unclosed ``<!--`` again, which took
    seconds on a long text of them."""
    start = text.find("<!--")
    while start != -1:
        end = text.find("-->", start + 4)
        if end == -1:
            return
        yield start, end + 3
        start = text.find("<!--", end + 3)


def invisible_elements(text: str) -> Iterator[tuple[int, int]]:
    """Elements styled invisible, from their opening tag to their closing one (the first
    after it, of any case), as ``<(\\w+)...style=...>.*?</\\1>`` finds them. Where each
    tag name closes next is remembered, so the text is read once per tag name."""
    closes: dict[str, tuple[int, int, int]] = {}  # tag -> (searched from, found at, end), -1: none
    pos = 0
    while (m := INVISIBLE_TAG.search(text, pos)) is not None:
        tag = m.group(1).lower()
        known = closes.get(tag)
        if known is None or known[0] > m.end() or (known[1] != -1 and known[1] < m.end()):
            close = re.compile(rf"</{re.escape(tag)}>", re.I).search(text, m.end())
            known = closes[tag] = (m.end(), close.start(), close.end()) if close else (m.end(), -1, -1)
        if known[1] == -1:
            pos = m.start() + 1
            continue
        yield m.start(), known[2]
        pos = known[2]


class _Sentences:
    """Sentence ends of one text, found once (on the first marker), so that widening each
    marker to its sentence does not read the text from its start again: with many
    markers in a long text that took seconds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ends: list[int] | None = None

    def around(self, start: int, end: int) -> tuple[int, int]:
        """Widen a marker to its sentence, so the whole injected instruction is removed."""
        text = self.text
        if self.ends is None:
            self.ends = [m.start() for m in _SENTENCE_END.finditer(text)]
        ends = self.ends
        # The last sentence end wholly before ``start``: a "." whose following space is
        # the marker's first character does not count (as when only text[:start] is read).
        i = bisect_left(ends, start) - 1
        if i >= 0 and ends[i] == start - 1 and text[ends[i]] != "\n":
            i -= 1
        left = ends[i] + 1 if i >= 0 else 0
        while left < start and text[left].isspace():
            left += 1
        j = bisect_left(ends, end)
        if j == len(ends):
            return left, len(text)
        stop = ends[j]
        return left, stop if text[stop] == "\n" else stop + 1
