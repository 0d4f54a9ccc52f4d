"""The built-in safety filter: the detectors layered, the policy applied, a Verdict out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archivist import Action, Span, Stage, Verdict
from archivist_safety.classifier import LearnedLayer
from archivist_safety.destructive import find_destructive_commands
from archivist_safety.encoder import well_formed
from archivist_safety.findings import HATE, PERSONAL_DATA, PROMPT_INJECTION, SELF_HARM, SEXUAL_MINORS, Finding
from archivist_safety.injection import find_injection
from archivist_safety.intent import CARE_KIND, find_harmful_intent
from archivist_safety.judge import Judge
from archivist_safety.personal_data import find_personal_data
from archivist_safety.policy import REASONS, Policy, block_message
from archivist_safety.toxicity import SLURS, ProfanityModel, find_toxicity

# The category of a text blocked without being screened (too long to check); the core
# calls what a failing filter could not screen the same.
UNSCREENED = "unscreened"


class ArchivistSafetyFilter:
    """Screens text at one stage: exact detectors, then rules, then the learned head.

    ``home`` is Archivist's home folder, where the sentence encoder lives (see
    :mod:`archivist_safety.encoder`); without one, or while the encoder cannot be
    loaded, the learned head is off and the fuzzy categories fall back to the rules.
    """

    name = "archivist-safety"

    def __init__(self, policy: Policy | None = None, home: Path | None = None,
                 wheel_cache: Path | None = None, judge: Judge | None = None) -> None:
        self.policy = policy or Policy()
        self.learned = LearnedLayer(home, wheel_cache) if self.policy.learned else None
        # The optional stricter stage (judge.py): asked only when the policy turns it on.
        self.judge = judge if self.policy.judge else None

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None, home: Path | None = None,
                      wheel_cache: Path | None = None, judge: Judge | None = None) -> ArchivistSafetyFilter:
        return cls(Policy.from_settings(settings), home, wheel_cache, judge)

    def warm_up(self) -> None:
        """Load the learned layers now (building the encoder if needed)."""
        if self.learned is not None:
            ProfanityModel.available()
            self.learned.load_now()

    def findings(self, text: str, stage: Stage | None = None, context: str = "") -> list[Finding]:
        """What the detectors find in ``text``; ``context`` is the answer's sentence before
        it, read only where the learned head would block ``text`` (see :meth:`in_context`)."""
        text = well_formed(text)
        found: list[Finding] = []
        found.extend(find_personal_data(text))
        found.extend(find_injection(text))
        found.extend(find_destructive_commands(text))
        intent = list(find_harmful_intent(text))
        set_threshold = self.policy.threshold_for(stage)
        scored = (self.learned.score(text, intent, set_threshold, self.policy.block_threshold_for(stage))
                  if self.learned is not None and text.strip() else None)
        if scored is None:
            # Rules only: the hand-written intent rules and the lexical hate layer (a
            # child in a care or teaching context is left alone: intent.CARE_KIND).
            found.extend(f for f in intent if f.kind != CARE_KIND)
            threshold = set_threshold if set_threshold is not None else 0.6
            found.extend(find_toxicity(text, threshold, self.policy.learned))
            return found
        # The head has weighed the rules already; only the exact ones still decide alone.
        found.extend(f for f in intent if f.category == SEXUAL_MINORS and f.kind != CARE_KIND)
        if SLURS.search(text.lower()):
            found.append(Finding(HATE, 0, len(text), 0.95, "slur"))
        p, category = scored
        assert self.learned is not None and self.learned.head is not None
        threshold = self.policy.warn_at(category, stage, self.learned.head.threshold)
        # A request for private data is the head's to judge; data that is present is the
        # exact detectors' (their spans are precise, a learned finding spans the whole text).
        exact_data = category == PERSONAL_DATA and any(f.category == PERSONAL_DATA for f in found)
        judged = self._judge(text, stage, p, threshold, category)
        if judged is True:
            found.append(Finding(category, 0, len(text), p, "judge"))
        elif judged is None and p >= threshold and not exact_data:
            found.append(Finding(category, 0, len(text), p, "learned",
                                 context_score=self.in_context(text, stage, context, p, category)))
        return found

    def in_context(self, text: str, stage: Stage | None, context: str, p: float, category: str) -> float | None:
        """The head's score for ``context`` and ``text`` read together, where ``text`` is an
        answer's sentence whose own score ``p`` reaches the block threshold; else None.

        Why: the head scores a sentence alone, and a sentence that talks *about* harm
        ("These slurs were a means to dehumanize people.", "They don't have the guts.")
        can score high alone; over a long answer such false blocks add up. Read with the
        sentence before it, such a sentence falls (on answers from the training sources,
        a sentence at 0.91 alone scored 0.06 in its window), while a harmful sentence after
        a lead-in ("Sure, here is what you asked for.") or after another harmful one mostly
        stays up. So a block needs the window to agree: when the window is under the warn
        threshold the sentence is warned (shown with a notice), not blocked. The window
        never lowers a warning, and is read only for would-be blocks (a rare second
        encoder pass). Measured in docs/safety.md.
        """
        if stage is not Stage.OUTPUT or not context.strip() or self.learned is None or self.learned.head is None:
            return None
        if p < self.policy.block_at(category, stage, self.learned.head.block):
            return None
        window = well_formed(context).strip() + " " + text
        scored = self.learned.score(window, list(find_harmful_intent(window)), self.policy.threshold_for(stage),
                                    self.policy.block_threshold_for(stage))
        return None if scored is None else round(scored[0], 4)

    def action_for(self, category: str, stage: Stage, found: list[Finding]) -> Action:
        """The policy's action for ``category`` at ``stage``; a blocking action is softened
        to a warning when the category was found by the learned head alone with a score
        below its block threshold (a low-confidence flag is shown with a notice)."""
        action = self.policy.action(category, stage)
        # Self-harm's "block" is the supportive message with help lines, fit to show
        # whenever the filter has a doubt; sexual content with minors is always blocked.
        if action is not Action.BLOCK or category in (SEXUAL_MINORS, SELF_HARM):
            return action
        mine = [f for f in found if f.category == category]
        if not mine or any(f.kind != "learned" for f in mine):
            return action
        head = self.learned.head if self.learned is not None else None
        if head is None:
            return action
        if max(f.score for f in mine) < self.policy.block_at(category, stage, head.block):
            return Action.WARN
        if self._context_disagrees(category, stage, mine):
            return Action.WARN
        return action

    def _context_disagrees(self, category: str, stage: Stage, mine: list[Finding]) -> bool:
        """Whether the learned findings were read in context and the window fell under the
        warn threshold (see :meth:`in_context`)."""
        head = self.learned.head if self.learned is not None else None
        if head is None:
            return False
        warn = self.policy.warn_at(category, stage, head.threshold)
        return any(f.context_score is not None and f.context_score < warn for f in mine)

    def _judge(self, text: str, stage: Stage | None, p: float, threshold: float, category: str) -> bool | None:
        """The chat model's verdict when the head is unsure (its score within the margin
        of its threshold), else None. Requests for private data are left to the head:
        the judge's question does not cover them."""
        if self.judge is None or stage is None or category == PERSONAL_DATA:
            return None
        if abs(p - threshold) > self.policy.judge_margin:
            return None
        return self.judge(text, stage)

    def screen(self, text: str, stage: Stage, context: str = "") -> Verdict:
        """The verdict on ``text`` at ``stage``; ``context``, the answer's sentence before
        it (the core passes it at the output stage), can turn a block into a warning."""
        stage = Stage(stage)
        text = well_formed(text)
        if len(text) > self.policy.max_chars:
            return self.too_long(text, stage)
        found = self.findings(text, stage, context[-self.policy.max_chars:])
        if not found:
            return Verdict.allow(text, self.name)
        by_category: dict[str, list[Finding]] = {}
        for f in found:
            by_category.setdefault(f.category, []).append(f)
        actions = {c: self.action_for(c, stage, found) for c in by_category}
        action = max(actions.values(), key=lambda a: a.severity)
        flagged = [c for c, a in actions.items() if a is not Action.ALLOW]
        categories = tuple(sorted(flagged, key=lambda c: (-actions[c].severity, c)))
        spans = tuple(
            Span(f.start, f.end, f.category)
            for f in sorted(found, key=lambda f: (f.start, f.end))
            if actions[f.category] is not Action.ALLOW
        )
        score = max((f.score for f in found if f.category in flagged), default=0.0)
        if action is Action.ALLOW:
            return Verdict(Action.ALLOW, text=text, filter_name=self.name)
        if action is Action.BLOCK:
            blocked = [c for c in categories if actions[c] is Action.BLOCK]
            main = SELF_HARM if SELF_HARM in blocked else blocked[0]
            out = block_message(main, stage)
            reason = f"Blocked because {REASONS.get(main, main)}."
        elif action is Action.REDACT:
            out = redact(text, [f for f in found if actions[f.category] is Action.REDACT])
            redacted = sorted({c for c in categories if actions[c] is Action.REDACT})
            reason = "Redacted because " + "; ".join(REASONS[c] for c in redacted) + "."
        else:
            out = text
            reason = "Flagged because " + "; ".join(REASONS.get(c, c) for c in categories) + "."
            softened = [c for c in categories if actions[c] is Action.WARN and self.policy.action(c, stage) is Action.BLOCK]
            if softened and any(self._context_disagrees(c, stage, [f for f in found if f.category == c])
                                for c in softened):
                reason += (" Read with the sentence before it, it looks much less likely harmful, so it is shown "
                           "with this notice instead of being blocked.")
            elif softened:
                reason += " The filter is not sure, so it is shown with this notice instead of being blocked."
        if any(f.kind == "judge" and f.category in flagged for f in found):
            reason += " The chat model was asked and judged it unsafe."
        return Verdict(action, categories, round(score, 3), spans, reason, out, self.name)


    def too_long(self, text: str, stage: Stage) -> Verdict:
        """The verdict on a text longer than ``policy.max_chars``: blocked, unscreened.

        Why not screen it anyway, or its first part: the detectors take time in
        proportion to the text (about 1 s for 100 KB here, more on a slower machine), so
        past some length a screen outlasts the host's limit, and then whether a text is
        screened would depend on the machine's speed. A text the filter did not read
        whole is not let through.
        """
        what = {
            Stage.INPUT: "I can't answer this",
            Stage.PASSAGE: "A passage from your documents was left out",
            Stage.OUTPUT: "I stopped this answer",
        }[stage]
        size = f"{len(text):,} characters; the safety filter checks at most {self.policy.max_chars:,}"
        reason = f"Blocked because it is too long to check ({size}, `max_chars` in [safety])."
        return Verdict(Action.BLOCK, (UNSCREENED,), 1.0, (), reason,
                       f"{what} because it is too long for the safety filter to check ({size}).", self.name)


def redact(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding's span replaced by its label (hidden characters dropped)."""
    spans: list[tuple[int, int, str]] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        label = f.label if f.label or f.category == PROMPT_INJECTION else "[removed]"
        if spans and f.start < spans[-1][1]:
            s, e, lab = spans[-1]
            if f.end > e:
                spans[-1] = (s, f.end, lab or label)
            continue
        spans.append((f.start, f.end, label))
    out, pos = [], 0
    for s, e, label in spans:
        out.append(text[pos:s])
        out.append(label)
        pos = e
    out.append(text[pos:])
    return "".join(out)
