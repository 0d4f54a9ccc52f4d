"""The Settings page: how answers are made, how the window looks, where data lives.

Every change is saved as it is made (no OK button to forget) and takes effect on the
next question; theme and font size apply at once.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.preferences import THEMES, Preferences
from archivist.prompt import DEFAULT_SYSTEM_PROMPT


class SettingsPage(QWidget):
    """Edits a :class:`Preferences`; ``changed`` fires after each saved change."""

    changed = Signal(object)  # Preferences

    def __init__(self, prefs: Preferences, settings: object, home: Path, parent: QWidget | None = None,
                 app: object | None = None) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.settings = settings
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Settings")
        title.setObjectName("pageTitle")
        outer.addWidget(title)
        holder = QWidget()
        holder.setMaximumWidth(760)  # long fields are hard to read on a wide window
        form = QFormLayout(holder)
        form.setContentsMargins(0, 8, 0, 0)
        outer.addWidget(holder)

        self.system_prompt = QPlainTextEdit(prefs.system_prompt)
        self.system_prompt.setMaximumHeight(110)
        self.system_prompt.setToolTip("What the model is told before every conversation.")
        self._prompt_timer = QTimer(self, singleShot=True, interval=400)
        self._prompt_timer.timeout.connect(self._save)
        self.system_prompt.textChanged.connect(self._prompt_timer.start)
        reset = QPushButton("Reset to default")
        reset.clicked.connect(lambda: self.system_prompt.setPlainText(DEFAULT_SYSTEM_PROMPT))
        prompt_box = QVBoxLayout()
        prompt_box.addWidget(self.system_prompt)
        prompt_box.addWidget(reset, 0, Qt.AlignmentFlag.AlignLeft)
        form.addRow("System prompt", prompt_box)

        self.context_budget = QSpinBox(minimum=256, maximum=131072, singleStep=256, value=prefs.context_budget)
        self.context_budget.setSuffix(" tokens")
        self.context_budget.setToolTip("Most tokens a prompt may use (capped by the model's own limit).")
        form.addRow("Context budget", self.context_budget)

        self.sources = QSpinBox(minimum=1, maximum=50, value=prefs.sources)
        self.sources.setToolTip("How many passages of your documents are given to the model.")
        form.addRow("Sources per answer", self.sources)

        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, decimals=2, value=prefs.temperature)
        self.temperature.setToolTip("0 answers the same way each time; higher is more varied.")
        form.addRow("Temperature", self.temperature)

        self.theme = QComboBox()
        for name in THEMES:
            self.theme.addItem({"system": "Follow the system", "light": "Light", "dark": "Dark"}[name], name)
        self.theme.setCurrentIndex(THEMES.index(prefs.theme))
        form.addRow("Theme", self.theme)

        self.font_size = QSpinBox(minimum=0, maximum=32, value=prefs.font_size)
        self.font_size.setSpecialValueText("System default")
        self.font_size.setSuffix(" pt")
        form.addRow("Font size", self.font_size)

        folder = QHBoxLayout()
        # A read-only line edit rather than a label: a long path scrolls instead of
        # forcing the whole window wider.
        self.data_folder = QLineEdit(str(home))
        self.data_folder.setReadOnly(True)
        open_folder = QPushButton("Open")
        open_folder.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(home))))
        folder.addWidget(self.data_folder, 1)
        folder.addWidget(open_folder)
        form.addRow("Data folder", folder)
        hint = QLabel("Conversations, models and indexes live here. To use another folder, "
                      "start Archivist with <code>--home DIR</code> or set <code>ARCHIVIST_HOME</code>.")
        hint.setWordWrap(True)
        hint.setObjectName("hint")
        form.addRow("", hint)

        # The OpenAI-compatible API (archivist serve), over the window's application: the one
        # given, else the window's (found when the box is used: the page is made before it).
        from archivist.gui.api_server_box import ApiServerBox

        api_title = QLabel("Local API")
        api_title.setObjectName("sectionTitle")
        form.addRow(api_title)
        self.api_server = ApiServerBox(lambda: app if app is not None else getattr(self.window(), "app", None))
        form.addRow(self.api_server)
        outer.addStretch(1)

        for spin in (self.context_budget, self.sources, self.font_size):
            spin.valueChanged.connect(self._save)
        self.temperature.valueChanged.connect(self._save)
        self.theme.currentIndexChanged.connect(self._save)

    def _save(self) -> None:
        p = self.prefs
        p.system_prompt = self.system_prompt.toPlainText().strip() or DEFAULT_SYSTEM_PROMPT
        p.context_budget = self.context_budget.value()
        p.sources = self.sources.value()
        p.temperature = round(self.temperature.value(), 2)
        p.theme = self.theme.currentData()
        p.font_size = self.font_size.value()
        p.save(self.settings)
        self.changed.emit(p)
