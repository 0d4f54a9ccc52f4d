"""Shell commands that wipe a disk, a home folder or every file in reach.

A small local model answering "how do I remove a folder from the index?" was seen to
reply ``sudo rm -r *``. Nothing in the categories above catches that: it is neither
malice nor a crime, just an answer that destroys the user's files if pasted into a
terminal. These patterns are exact, so they are rules, not a learned score, and they
flag only wholesale targets (the root, a home folder, a drive, every file in the current
folder, a raw disk device); ``rm -rf build/`` passes. The default action warns at the
output stage (the user sees the answer with the warning) and allows input: asking what
``rm -rf /`` does is a fair question.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from archivist_safety.findings import DESTRUCTIVE_COMMAND, Finding

_END = r"(?=$|[\s;&|`'\")\]])"
_WHOLESALE = (r"(?:/\*?|~/?\*?|\$HOME/?\*?|\$\{HOME\}/?\*?|\*|\.\*?|\./\*|\.\.|"
              r"/(?:home|etc|usr|var|boot|bin|sbin|lib|lib64|opt|root|sys|Users|System|Library)/?\*?)")
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # rm with a recursive flag on the root, a home folder, '*' or '.'
    ("rm_recursive", re.compile(
        rf"\brm\s+(?:-{{1,2}}[\w-]+\s+)*?(?:-\w*[rR]\w*|--recursive)(?:\s+-{{1,2}}[\w-]+)*\s+{_WHOLESALE}{_END}")),
    # Windows: recursive delete of a drive or a user folder, formatting a drive
    ("del_drive", re.compile(r"\b(?:del|erase)\s+(?:/[a-zA-Z]\s+)*/[sS]\b[^\n]*?\b[a-zA-Z]:\\(?:\*(?:\.\*)?)?(?=\s|$)")),
    ("rd_drive", re.compile(r"\b(?:rd|rmdir)\s+(?:/[a-zA-Z]\s+)*/[sS]\b[^\n]*?\b[a-zA-Z]:\\?(?=\s|$)")),
    ("format_drive", re.compile(r"\bformat\s+[a-zA-Z]:(?=\s|$)")),
    ("remove_item_drive", re.compile(r"\bRemove-Item\b[^\n]*?-Recurse\b[^\n]*?\b[a-zA-Z]:\\\*?(?=\s|$)|"
                                     r"\bRemove-Item\b[^\n]*?\b[a-zA-Z]:\\\*?\s[^\n]*?-Recurse\b", re.IGNORECASE)),
    # raw disks: new file system, dd or a redirect onto a device, shred
    ("mkfs", re.compile(r"\bmkfs(?:\.\w+)?\s+(?:-\S+\s+)*/dev/\w+")),
    ("dd_device", re.compile(r"\bdd\b[^\n]*?\bof=/dev/(?:sd[a-z]|hd[a-z]|nvme\d\w*|disk\d\w*|mmcblk\d\w*|vd[a-z])")),
    ("redirect_device", re.compile(r">\s*/dev/(?:sd[a-z]|hd[a-z]|nvme\d\w*|disk\d\w*|mmcblk\d\w*|vd[a-z])\b")),
    ("shred_device", re.compile(r"\bshred\b[^\n]*?/dev/(?:sd[a-z]|hd[a-z]|nvme\d\w*|disk\d\w*|mmcblk\d\w*)")),
    # permissions or ownership of the whole system, and the fork bomb
    ("chmod_root", re.compile(r"\bch(?:mod|own)\s+(?:-\w+\s+)*-\w*R\w*\s+(?:-\w+\s+)*\S+\s+/(?=\s|$)")),
    ("fork_bomb", re.compile(r":\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:")),
)


def find_destructive_commands(text: str) -> Iterator[Finding]:
    for kind, rule in RULES:
        for m in rule.finditer(text):
            yield Finding(DESTRUCTIVE_COMMAND, m.start(), m.end(), 0.99, kind)
