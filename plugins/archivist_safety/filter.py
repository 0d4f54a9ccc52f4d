"""The built-in safety filter: the detectors layered, the policy applied, a Verdict out."""

from __future__ import annotations

from typing import Any

from archivist import Action, Span, Stage, Verdict

from archivist_safety.findings import PROMPT_INJECTION, SELF_HARM, Finding
from archivist_safety.injection import find_injection
from archivist_safety.intent import find_harmful_intent
from archivist_safety.personal_data import find_personal_data
from archivist_safety.policy import REASONS, Policy, block_message
from archivist_safety.toxicity import ProfanityModel, find_toxicity


class ArchivistSafetyFilter:
    """Screens text at one stage: exact detectors first, then rules, then the learned model."""

    name = "archivist-safety"

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> "ArchivistSafetyFilter":
        return cls(Policy.from_settings(settings))

    def warm_up(self) -> None:
        """Load the learned model now rather than on the first screened text."""
        if self.policy.learned:
            ProfanityModel.available()

    def findings(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        found.extend(find_personal_data(text))
        found.extend(find_injection(text))
        found.extend(find_harmful_intent(text))
        found.extend(find_toxicity(text, self.policy.threshold, self.policy.learned))
        return found

    def screen(self, text: str, stage: Stage) -> Verdict:
        stage = Stage(stage)
        found = self.findings(text)
        if not found:
            return Verdict.allow(text, self.name)
        by_category: dict[str, list[Finding]] = {}
        for f in found:
            by_category.setdefault(f.category, []).append(f)
        actions = {c: self.policy.action(c, stage) for c in by_category}
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
        return Verdict(action, categories, round(score, 3), spans, reason, out, self.name)


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
