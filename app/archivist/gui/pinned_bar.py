"""The files pinned to the conversation, shown above the composer as removable chips.

Why chips above the input: a pinned file changes what every answer in the conversation
reads (the whole file, not the library's best passages), so it must stay in sight while
typing, and removing it must be one click. The chat page owns the list and stores it;
this only shows it and says which chip was clicked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

# Chips shown before the rest are summed up as "+N more" (their names in its tooltip).
MAX_CHIPS = 4
_CHIP_STYLE = """
QPushButton#pinChip { background: palette(alternate-base); border: 1px solid palette(mid);
                      border-radius: 11px; padding: 2px 10px; }
QPushButton#pinChip:hover { border-color: palette(highlight); }
"""


class PinnedFilesBar(QWidget):
    """``removed(path)`` when the user clicks a file's chip to unpin it."""

    removed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pinnedFiles")
        self.setStyleSheet(_CHIP_STYLE)
        self._paths: list[str] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 4)
        self._layout.setSpacing(6)
        self.label = QLabel("Answering from the whole of:")
        self.label.setObjectName("hint")
        self.label.setToolTip("Questions in this conversation are answered from these files, read whole "
                              "(in parts when they are longer than the model can read at once).")
        self._layout.addWidget(self.label)
        self.more = QLabel("")
        self.more.setObjectName("hint")
        self._chips: list[QPushButton] = []
        self.setVisible(False)

    def set_files(self, paths: Sequence[str]) -> None:
        """Show ``paths`` (none: the bar hides)."""
        self._paths = list(paths)
        for chip in self._chips:
            self._layout.removeWidget(chip)
            chip.deleteLater()
        self._chips = []
        self._layout.removeWidget(self.more)
        while self._layout.count() > 1:  # the stretch after the chips
            self._layout.takeAt(1)
        for path in self._paths[:MAX_CHIPS]:
            chip = QPushButton(f"{Path(path).name}  \u00d7")
            chip.setObjectName("pinChip")
            chip.setCursor(Qt.CursorShape.PointingHandCursor)
            chip.setToolTip(f"{path}\nClick to unpin it from this conversation.")
            chip.setAccessibleName(f"Unpin {Path(path).name}")
            chip.clicked.connect(lambda _checked=False, path=path: self.removed.emit(path))
            self._layout.addWidget(chip)
            self._chips.append(chip)
        rest = self._paths[MAX_CHIPS:]
        self.more.setText(f"+{len(rest)} more" if rest else "")
        self.more.setToolTip("\n".join(rest))
        self._layout.addWidget(self.more)
        self.more.setVisible(bool(rest))
        self._layout.addStretch(1)
        self.setVisible(bool(self._paths))

    def files(self) -> list[str]:
        return list(self._paths)

    def chips(self) -> list[QPushButton]:
        return list(self._chips)
