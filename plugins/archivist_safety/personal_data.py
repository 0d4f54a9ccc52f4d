"""Exact detectors for personal data and secrets: patterns plus checksums where they exist.

Card numbers must pass the Luhn check, IBANs the ISO 13616 mod-97 check, French and
Spanish national IDs their control keys; secrets are matched by the prefixes their
issuers use (AWS, GitHub, Slack, Stripe, Google, OpenAI-style keys, private-key blocks,
JSON web tokens) or by an explicit ``password = ...`` style assignment.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator

from archivist_safety.findings import PERSONAL_DATA, Finding

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|\(\d{3}\)\s?\d{3}[\s.-]\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567
    r"|0\d{1,4}[\s/-]\d{3,4}[\s-]?\d{3,4}"  # 020 7946 0958, 030/1234567
    r")(?![\w-])"
)
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
US_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
UK_NINO = re.compile(r"\b(?![DFIQUV])[A-CEGHJ-PR-TW-Z](?![DFIOQUV])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
FR_INSEE = re.compile(r"\b[12] ?\d{2} ?(?:0[1-9]|1[0-2]) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b")
ES_DNI = re.compile(r"\b\d{8}-?[A-Z]\b")

SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b")),
    (
        "aws_secret_key",
        re.compile(r"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*[\"']?([A-Za-z0-9/+=]{40})\b"),
    ),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("stripe_key", re.compile(r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("api_key", re.compile(r"\bsk-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_-]{20,}\b")),
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    (
        "password",
        re.compile(
            r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"
            r"\s*[:=]\s*[\"']?([^\s\"']{6,})"
        ),
    ),
)

LABELS = {
    "email": "[e-mail address removed]",
    "phone": "[phone number removed]",
    "card": "[card number removed]",
    "iban": "[IBAN removed]",
    "national_id": "[ID number removed]",
}

# ISO 13616 lengths of the IBANs of the countries that issue them most (others: 15..34).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GI": 23, "GL": 18, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "ME": 22, "MT": 31, "NL": 18, "NO": 15,
    "PL": 28, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TR": 26, "UA": 29,
}


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_number_valid(raw: str) -> bool:
    digits = re.sub(r"[ -]", "", raw)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    # Issuer prefixes: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro.
    if not re.match(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|35|3[068]|5[06-9]|6", digits):
        return False
    return luhn_valid(digits)


def iban_valid(raw: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    iban = raw.replace(" ", "").upper()
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def insee_valid(raw: str) -> bool:
    """French social security number: 13 digits and a key of 97 - (number mod 97)."""
    s = raw.replace(" ", "")
    body, key = s[:13], s[13:]
    body = body.replace("2A", "19").replace("2B", "18")
    return body.isdigit() and 97 - int(body) % 97 == int(key)


def dni_valid(raw: str) -> bool:
    """Spanish DNI: eight digits and the letter their value mod 23 selects."""
    s = raw.replace("-", "")
    return "TRWAGMYFPDXBNJZSQVHLCKE"[int(s[:8]) % 23] == s[8]


def find_personal_data(text: str) -> Iterator[Finding]:
    """Every e-mail, phone, card, IBAN, national ID and secret in ``text``."""
    # The spans found so far never overlap, so kept in order they answer "is this one
    # free?" by its one neighbour (checking all of them took seconds on a long text of
    # thousands of addresses).
    starts: list[int] = []
    ends: list[int] = []

    def free(start: int, end: int) -> bool:
        i = bisect_left(starts, end) - 1  # the last span that starts before this one ends
        return i < 0 or ends[i] <= start

    def hit(kind: str, start: int, end: int, label: str) -> Finding:
        i = bisect_left(starts, start)
        starts.insert(i, start)
        ends.insert(i, end)
        return Finding(PERSONAL_DATA, start, end, 1.0, kind, label)

    for kind, pattern in SECRETS:
        for m in pattern.finditer(text):
            # For "password = X" style rules only the value is secret, not the key name.
            start, end = (m.start(1), m.end(1)) if m.groups() else m.span()
            if free(start, end):
                yield hit(kind, start, end, "[secret removed]")
    for m in EMAIL.finditer(text):
        if free(*m.span()):
            yield hit("email", *m.span(), LABELS["email"])
    if any(ch.isdigit() for ch in text):
        for m in IBAN.finditer(text):
            if free(*m.span()) and iban_valid(m.group()):
                yield hit("iban", *m.span(), LABELS["iban"])
        for m in CARD.finditer(text):
            if free(*m.span()) and card_number_valid(m.group()):
                yield hit("card", *m.span(), LABELS["card"])
        for pattern, check in (
            (US_SSN, None),
            (UK_NINO, None),
            (FR_INSEE, insee_valid),
            (ES_DNI, dni_valid),
        ):
            for m in pattern.finditer(text):
                if free(*m.span()) and (check is None or check(m.group())):
                    yield hit("national_id", *m.span(), LABELS["national_id"])
        for m in PHONE.finditer(text):
            digits = sum(ch.isdigit() for ch in m.group())
            if 7 <= digits <= 15 and free(*m.span()):
                yield hit("phone", *m.span(), LABELS["phone"])
