"""Text from documents and models made safe to print in a terminal.

A document can hold terminal control sequences: ``ESC ] 0 ; title BEL`` renames the
window, ``ESC [ 2 J`` clears the screen, others move the cursor, rewrite what was printed
or, on some terminals, answer back with keystrokes. ``archivist search`` and
``archivist ask`` print passages and answers that come from files the user did not
write, so everything they print from that text goes through :func:`printable`. It keeps
newlines and tabs, and shows any other control character as a visible escape (``\\x1b``)
instead of sending it to the terminal. ``--json`` output is JSON, which escapes them
itself.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (0x80-0x9f: 8-bit CSI and OSC), and
# the Unicode bidi overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character a terminal would act on shown as an escape."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
