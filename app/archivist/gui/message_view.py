"""One message of the transcript: Markdown prose, code blocks with Copy, citations, safety.

Streaming text arrives a token at a time; re-rendering Markdown for each would stall the
event loop on long answers, so appends only mark the view dirty and a short timer
renders at most every ``RENDER_INTERVAL_MS``. Rendering reuses the widgets of segments
that already exist (only the last one usually changes), so the cost stays flat.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QFontDatabase, QGuiApplication, QTextOption
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.markdown import Segment, citation_number, link_citations, split_segments
from archivist.gui.sources import (
    citation_from,
    citation_from_passage,
    citation_tooltip,
    open_citation,
    sources_html,
)
from archivist.types import Citation, Passage

RENDER_INTERVAL_MS = 40

_ACTION_WORDS = {
    "block": ("Withheld", "⊘"),  # in DejaVu and the system UI fonts; ⛔ is emoji-only
    "redact": ("Redacted", "✂"),
    "warn": ("Caution", "⚠"),
}


class CodeBlock(QFrame):
    """A fenced code block: monospace, unwrapped, with its language and a Copy button."""

    def __init__(self, segment: Segment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(2)
        header = QHBoxLayout()
        self.language = QLabel(segment.language or "code")
        self.language.setObjectName("codeLanguage")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.setFlat(True)
        self.copy_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.copy_button.clicked.connect(self.copy)
        header.addWidget(self.language)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        layout.addLayout(header)
        self.editor = QPlainTextEdit()
        self.editor.setReadOnly(True)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setWordWrapMode(QTextOption.WrapMode.NoWrap)
        self.editor.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.editor.setFrameShape(QFrame.Shape.NoFrame)
        layout.addWidget(self.editor)
        self.update_segment(segment)

    def update_segment(self, segment: Segment) -> None:
        if self.editor.toPlainText() != segment.text:
            self.editor.setPlainText(segment.text)
        self.language.setText(segment.language or "code")
        lines = max(1, segment.text.count("\n") + 1)
        metrics = self.editor.fontMetrics()
        scrollbar = self.editor.horizontalScrollBar().sizeHint().height()
        self.editor.setFixedHeight(lines * metrics.lineSpacing() + 12 + scrollbar)

    def code(self) -> str:
        return self.editor.toPlainText()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code())
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))


class SafetyMarker(QFrame):
    """Marks content a safety filter withheld, redacted or warned about; "Why?" tells."""

    def __init__(self, action: str, reason: str, categories: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("safetyMarker")
        self.action = action
        self.reason = reason or "A safety filter acted on this text."
        word, icon = _ACTION_WORDS.get(action, ("Note", "ℹ"))
        what = ", ".join(c.replace("_", " ") for c in categories) or "safety filter"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.summary = QLabel(f"{icon} <b>{word}</b> ({html.escape(what)}) &nbsp;<a href='why'>Why?</a>")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.linkActivated.connect(lambda _link: self.toggle_reason())
        self.details = QLabel(self.reason)
        self.details.setWordWrap(True)
        self.details.setVisible(False)
        layout.addWidget(self.summary)
        layout.addWidget(self.details)

    def toggle_reason(self) -> None:
        self.details.setVisible(not self.details.isVisible())


class MessageView(QFrame):
    """A user question or an assistant answer, rendered; the last turn gets its actions."""

    regenerate_requested = Signal()
    edit_requested = Signal()

    def __init__(self, role: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.setObjectName("userMessage" if role == "user" else "assistantMessage")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._text = text
        self._citations: dict[int, Citation] = {}
        self._segment_widgets: list[QWidget] = []
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._render)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)
        self.author = QLabel("You" if role == "user" else "Archivist")
        self.author.setObjectName("author")
        layout.addWidget(self.author)
        self.safety_box = QVBoxLayout()
        self.safety_box.setSpacing(2)
        layout.addLayout(self.safety_box)
        self.body = QVBoxLayout()
        self.body.setSpacing(6)
        layout.addLayout(self.body)
        self.placeholder = QLabel("…")
        self.placeholder.setObjectName("thinking")
        self.placeholder.setVisible(role == "assistant" and not text)
        layout.addWidget(self.placeholder)
        self.sources_label = self._link_label()
        self.sources_label.setObjectName("sourcesLabel")
        self.sources_label.setVisible(False)
        layout.addWidget(self.sources_label)
        footer = QHBoxLayout()
        self.stats = QLabel("")
        self.stats.setObjectName("stats")
        footer.addWidget(self.stats)
        footer.addStretch(1)
        self.copy_button = self._action("Copy", "Copy this message (Ctrl+Shift+C)", self.copy)
        self.regenerate_button = self._action("Regenerate", "Answer again (Ctrl+R)", self.regenerate_requested.emit)
        self.edit_button = self._action("Edit", "Edit and resend this question (Ctrl+E)", self.edit_requested.emit)
        for button in (self.copy_button, self.regenerate_button, self.edit_button):
            footer.addWidget(button)
        layout.addLayout(footer)
        self.set_last(False)
        if text:
            self._render()

    # -- building -----------------------------------------------------------------

    def _action(self, text: str, tip: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.setFlat(True)
        button.setToolTip(tip)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(slot)
        return button

    def _link_label(self) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setOpenExternalLinks(False)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        label.linkHovered.connect(self.on_link_hovered)
        label.linkActivated.connect(self.on_link_activated)
        return label

    # -- content ------------------------------------------------------------------

    def text(self) -> str:
        return self._text

    def append(self, text: str) -> None:
        self._text += text
        self._schedule()

    def set_text(self, text: str) -> None:
        self._text = text
        self._schedule()

    def _schedule(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def set_sources(self, passages: Sequence[Passage]) -> None:
        """Sources numbered as the prompt numbers them, linkable while the answer streams."""
        self._citations = {n: citation_from_passage(n, p) for n, p in enumerate(passages, start=1)}
        self._schedule()

    def set_citations(self, citations: Sequence[Any]) -> None:
        """The finished answer's sources, listed under it: cited ones, then consulted ones."""
        listed = [citation_from(c) for c in citations]
        known = dict(self._citations)
        known.update({c.n: c for c in listed})
        self._citations = known
        if listed:
            self.sources_label.setText(sources_html(listed))
            self.sources_label.setVisible(True)
        self._schedule()

    def citation(self, n: int) -> Citation | None:
        return self._citations.get(n)

    def add_safety(self, action: str, reason: str, categories: Sequence[str] = ()) -> SafetyMarker:
        marker = SafetyMarker(action, reason, categories)
        self.safety_box.addWidget(marker)
        return marker

    def clear_safety(self) -> None:
        for marker in self.safety_markers():
            self.safety_box.removeWidget(marker)
            marker.deleteLater()

    def safety_markers(self) -> list[SafetyMarker]:
        items = (self.safety_box.itemAt(i) for i in range(self.safety_box.count()))
        return [w for item in items if item is not None and isinstance(w := item.widget(), SafetyMarker)]

    def set_stats(self, text: str) -> None:
        self.stats.setText(text)

    def set_last(self, last: bool, *, busy: bool = False) -> None:
        """Only the last question and answer offer edit and regenerate."""
        self.copy_button.setVisible(bool(self._text) and not busy)
        self.regenerate_button.setVisible(last and not busy and self.role == "assistant")
        self.edit_button.setVisible(last and not busy and self.role == "user")

    # -- rendering ----------------------------------------------------------------

    def _render(self) -> None:
        """Bring the widgets in line with the text (called by the throttle timer)."""
        self._dirty = False
        self.placeholder.setVisible(self.role == "assistant" and not self._text.strip())
        segments = split_segments(self._text) if self.role == "assistant" else [Segment("text", self._text)]
        for i, segment in enumerate(segments):
            widget = self._segment_widgets[i] if i < len(self._segment_widgets) else None
            wanted = CodeBlock if segment.kind == "code" else QLabel
            if widget is None or type(widget) is not wanted:
                if widget is not None:
                    self._remove_segments_from(i)
                widget = CodeBlock(segment) if segment.kind == "code" else self._prose_label()
                self.body.addWidget(widget)
                self._segment_widgets.append(widget)
            if isinstance(widget, CodeBlock):
                widget.update_segment(segment)
            else:
                self._set_prose(widget, segment.text)
        self._remove_segments_from(len(segments))

    def flush(self) -> None:
        """Render now if anything is pending (end of a stream, tests, screenshots)."""
        self._timer.stop()
        self._render()

    def _prose_label(self) -> QLabel:
        label = self._link_label()
        label.setObjectName("prose")
        label.setTextFormat(
            Qt.TextFormat.MarkdownText if self.role == "assistant" else Qt.TextFormat.PlainText
        )
        label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return label

    def _set_prose(self, label: QLabel, text: str) -> None:
        if self.role == "assistant":
            text = link_citations(text, max(self._citations, default=0))
        if label.text() != text:
            label.setText(text)

    def _remove_segments_from(self, index: int) -> None:
        for widget in self._segment_widgets[index:]:
            self.body.removeWidget(widget)
            widget.deleteLater()
        del self._segment_widgets[index:]

    def code_blocks(self) -> list[CodeBlock]:
        return [w for w in self._segment_widgets if isinstance(w, CodeBlock)]

    def prose_labels(self) -> list[QLabel]:
        return [w for w in self._segment_widgets if isinstance(w, QLabel)]

    # -- interaction --------------------------------------------------------------

    def on_link_hovered(self, link: str) -> None:
        n = citation_number(link)
        citation = self._citations.get(n) if n is not None else None
        if citation is None:
            QToolTip.hideText()
            return
        QToolTip.showText(QCursor.pos(), citation_tooltip(citation), self)

    def on_link_activated(self, link: str) -> None:
        n = citation_number(link)
        if n is not None:
            citation = self._citations.get(n)
            if citation is not None:
                open_citation(citation)
            return
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        QDesktopServices.openUrl(QUrl(link))

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._text)
