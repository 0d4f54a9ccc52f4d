"""Light and dark palettes, following the operating system unless the user chose one.

Fusion is used everywhere so the palette fully decides the colours (native styles
ignore parts of it), and the few style rules below refer to palette roles rather than
fixed colours, so one stylesheet serves both themes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

STYLE = """
QLabel#pageTitle { font-size: 15pt; font-weight: 600; }
QLabel#sectionTitle { font-size: 11pt; font-weight: 600; margin-top: 10px; }
QFrame#firstRun { background: palette(alternate-base); border: 1px solid palette(mid); border-radius: 10px; }
QLabel#author { font-weight: 600; color: palette(highlight); }
QLabel#stats, QLabel#hint, QLabel#thinking { color: palette(placeholder-text); }
QFrame#userMessage { background: palette(alternate-base); border-radius: 10px; }
QFrame#assistantMessage { background: palette(base); border: 1px solid palette(mid); border-radius: 10px; }
QFrame#codeBlock { background: palette(window); border: 1px solid palette(mid); border-radius: 6px; }
QFrame#codeBlock QPlainTextEdit { background: palette(window); }
QLabel#codeLanguage { color: palette(placeholder-text); font-size: 8pt; }
QFrame#safetyMarker { background: rgba(230, 160, 40, 40); border: 1px solid rgba(230, 160, 40, 140); border-radius: 6px; }
QLabel#banner { background: rgba(192, 57, 43, 40); border-top: 1px solid rgba(192, 57, 43, 140); padding: 8px 16px; }
QFrame#undoBar { background: palette(alternate-base); border-radius: 6px; }
QWidget#transcript { background: palette(window); }
QListWidget#navigation { border: none; background: palette(alternate-base); font-size: 11pt; }
QListWidget#navigation::item { padding: 8px 10px; }
QPushButton#sendButton, QPushButton#stopButton { min-width: 72px; min-height: 32px; }
QPlainTextEdit#composer { border: 1px solid palette(mid); border-radius: 8px; padding: 4px; }
"""


def system_is_dark() -> bool:
    scheme = QGuiApplication.styleHints().colorScheme()
    return scheme == Qt.ColorScheme.Dark


def palette_for(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        colours = {
            QPalette.ColorRole.Window: "#202124",
            QPalette.ColorRole.WindowText: "#e8eaed",
            QPalette.ColorRole.Base: "#2a2b2e",
            QPalette.ColorRole.AlternateBase: "#303134",
            QPalette.ColorRole.Text: "#e8eaed",
            QPalette.ColorRole.Button: "#35363a",
            QPalette.ColorRole.ButtonText: "#e8eaed",
            QPalette.ColorRole.Highlight: "#8ab4f8",
            QPalette.ColorRole.HighlightedText: "#202124",
            QPalette.ColorRole.Link: "#8ab4f8",
            QPalette.ColorRole.ToolTipBase: "#303134",
            QPalette.ColorRole.ToolTipText: "#e8eaed",
            QPalette.ColorRole.PlaceholderText: "#9aa0a6",
            QPalette.ColorRole.Mid: "#4a4b4f",
        }
    else:
        colours = {
            QPalette.ColorRole.Window: "#f6f7f9",
            QPalette.ColorRole.WindowText: "#1f2328",
            QPalette.ColorRole.Base: "#ffffff",
            QPalette.ColorRole.AlternateBase: "#e9eef6",
            QPalette.ColorRole.Text: "#1f2328",
            QPalette.ColorRole.Button: "#eef0f3",
            QPalette.ColorRole.ButtonText: "#1f2328",
            QPalette.ColorRole.Highlight: "#1a73e8",
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#1a73e8",
            QPalette.ColorRole.ToolTipBase: "#ffffff",
            QPalette.ColorRole.ToolTipText: "#1f2328",
            QPalette.ColorRole.PlaceholderText: "#6b7280",
            QPalette.ColorRole.Mid: "#d0d4da",
        }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(colours[QPalette.ColorRole.PlaceholderText]))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(colours[QPalette.ColorRole.PlaceholderText]))
    return p


_default_point_size: float | None = None


def apply_theme(qapp: QApplication, theme: str, font_size: int = 0) -> bool:
    """Apply ``system``/``light``/``dark`` and a font size (0: default); True when dark."""
    global _default_point_size
    dark = system_is_dark() if theme == "system" else theme == "dark"
    qapp.setStyle("Fusion")
    qapp.setPalette(palette_for(dark))
    font = QFont(qapp.font())
    if _default_point_size is None:
        _default_point_size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
    font.setPointSizeF(float(font_size) if font_size > 0 else _default_point_size)
    qapp.setFont(font)
    qapp.setStyleSheet(STYLE)
    return dark
