"""Italian codice fiscale (CF) validation and canonicalisation, and STP/ENI code recognition.

A personal codice fiscale has 16 characters (DM 12/03/1974)::

    position  1-3   4-6    7-8   9      10-11  12-15       16
              RSS   MRA    85    T      10     A562        S
              name codes   year  month  day    birthplace  check character
                                        (+40 for women)    (Belfiore code)

When two people would receive the same code (omocodia) the Agenzia delle Entrate replaces digits, from the
right, at positions 7, 8, 10, 11, 13, 14 and 15 with the letters ``LMNPQRSTUV`` (0 -> L ... 9 -> V) and
recomputes the check character. Such variants are valid codes. :func:`canonical` maps every variant back to
the all-digit form: it is a *matching* key that lets a record carrying the de-omocodised form be found from
the issued form and vice versa. Because omocodia exists precisely to tell two people apart, the canonical
form alone is not proof that two records are the same person; :func:`normalise`/:func:`validate` give the
code as issued.

People without a codice fiscale (foreigners temporarily present, EU citizens not registered with the SSN)
carry a 16-character regional code: ``STP`` or ``ENI``, the 3-digit ISTAT region code, the 3-digit ISTAT code
of the issuing health authority and a 7-digit progressive number (e.g. ``STP0303080000001``).

Error messages name the rule that was broken and the position (1-based), never the offending characters:
the code and the birth date it encodes are personal data. Birth date and sex are not extracted here.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal

__all__ = [
    "CF_LENGTH",
    "MONTH_LETTERS",
    "OMOCODIA_LETTERS",
    "OMOCODIA_POSITIONS",
    "InvalidCodiceFiscale",
    "InvalidPersonIdentifier",
    "PersonIdentifierKind",
    "canonical",
    "check_character",
    "classify",
    "contains_codice_fiscale",
    "contains_person_identifier",
    "is_omocodic",
    "is_stp_eni",
    "is_valid",
    "normalise",
    "omocodic_variant",
    "validate",
]

PersonIdentifierKind = Literal["cf", "stp", "eni"]
"""What kind of person identifier a value is: a codice fiscale, an STP code or an ENI code."""

CF_LENGTH: Final = 16

_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS: Final = "0123456789"
_ALPHANUMERIC: Final = frozenset(_DIGITS + _LETTERS)

OMOCODIA_LETTERS: Final = "LMNPQRSTUV"
"""Letters that replace the digits 0-9 in omocodia variants (0 -> L, 1 -> M, ..., 9 -> V)."""

MONTH_LETTERS: Final = "ABCDEHLMPRST"
"""Month letters, January to December."""

OMOCODIA_POSITIONS: Final[tuple[int, ...]] = (6, 7, 9, 10, 12, 13, 14)
"""0-based indexes of the digits that omocodia may replace (positions 7, 8, 10, 11, 13, 14, 15)."""

_LETTER_POSITIONS: Final = frozenset({0, 1, 2, 3, 4, 5, 8, 11, 15})
_DIGIT_OR_OMOCODIA: Final = frozenset(_DIGITS + OMOCODIA_LETTERS)
_OMOCODIA_TO_DIGIT: Final = {letter: digit for digit, letter in zip(_DIGITS, OMOCODIA_LETTERS, strict=True)}
_DIGIT_TO_OMOCODIA: Final = {digit: letter for letter, digit in _OMOCODIA_TO_DIGIT.items()}

# Days in each month; February allows 29 because the century of the birth year is not encoded.
_MONTH_DAYS: Final = dict(zip(MONTH_LETTERS, (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), strict=True))

# Check-character tables. Positions are counted from 1: characters in odd positions (1, 3, ..., 15)
# use the odd table, characters in even positions use the even table. A digit has the value of the
# letter in the same place of the alphabet (0 ~ A, 1 ~ B, ..., 9 ~ J).
_ODD_TABLE: Final = (
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
)  # fmt: skip
_ODD_VALUES: Final = {
    **{d: _ODD_TABLE[i] for i, d in enumerate(_DIGITS)},
    **{c: _ODD_TABLE[i] for i, c in enumerate(_LETTERS)},
}
_EVEN_VALUES: Final = {**{d: i for i, d in enumerate(_DIGITS)}, **{c: i for i, c in enumerate(_LETTERS)}}

_STP_ENI_RE: Final = re.compile(r"(STP|ENI)[0-9]{13}")


class InvalidPersonIdentifier(ValueError):
    """A value is not a valid person identifier (codice fiscale, STP or ENI code).

    ``reason`` says what is wrong without repeating the value; ``position`` is the 1-based position of the
    offending character when there is one.
    """

    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


class InvalidCodiceFiscale(InvalidPersonIdentifier):
    """A value is not a valid codice fiscale."""


def normalise(cf: str) -> str:
    """Strip surrounding whitespace and upper-case. Does not validate."""
    return cf.strip().upper()


def check_character(first15: str) -> str:
    """The check character (16th character) for the first 15 characters of a codice fiscale.

    ``first15`` is normalised first; it must then be 15 characters from ``0-9A-Z``. Omocodia letters are
    used as they stand: the check character of an omocodia variant is computed on the variant.
    """
    code = normalise(first15)
    if len(code) != CF_LENGTH - 1:
        raise InvalidCodiceFiscale(f"check character needs exactly {CF_LENGTH - 1} characters, got {len(code)}")
    if not _ALPHANUMERIC.issuperset(code):
        position = next(i for i, char in enumerate(code, start=1) if char not in _ALPHANUMERIC)
        raise InvalidCodiceFiscale(f"character at position {position} must be a digit or a letter A-Z", position)
    return _check_character_of(code)


def _check_character_of(code: str) -> str:
    """:func:`check_character` of 15 characters already normalised and known to be from ``0-9A-Z``."""
    # code[0::2] are the odd (1-based) positions 1, 3, ..., 15; code[1::2] the even ones
    total = sum(map(_ODD_VALUES.__getitem__, code[0::2])) + sum(map(_EVEN_VALUES.__getitem__, code[1::2]))
    return _LETTERS[total % 26]


def _decode_digit(char: str) -> int:
    return int(_OMOCODIA_TO_DIGIT.get(char, char))


_LETTER: Final = f"[{_LETTERS}]"
_DIGIT_OR_OMOCODIA_LETTER: Final = f"[{_DIGITS}{OMOCODIA_LETTERS}]"
_CHARACTER_CLASSES: Final = re.compile(
    f"{_LETTER}{{6}}{_DIGIT_OR_OMOCODIA_LETTER}{{2}}{_LETTER}{_DIGIT_OR_OMOCODIA_LETTER}{{2}}{_LETTER}"
    f"{_DIGIT_OR_OMOCODIA_LETTER}{{3}}{_LETTER}"
)
"""The character class of every position of a codice fiscale (letters at :data:`_LETTER_POSITIONS`)."""


def _refuse_character_classes(code: str) -> None:
    """Raise :class:`InvalidCodiceFiscale` naming the first position whose character is of the wrong class."""
    for index, char in enumerate(code):
        if index in _LETTER_POSITIONS:
            if char not in _LETTERS:
                raise InvalidCodiceFiscale(f"character at position {index + 1} must be a letter A-Z", index + 1)
        elif char not in _DIGIT_OR_OMOCODIA:
            raise InvalidCodiceFiscale(
                f"character at position {index + 1} must be a digit or an omocodia letter ({OMOCODIA_LETTERS})",
                index + 1,
            )


def validate(cf: str) -> str:
    """Return the normalised codice fiscale, or raise :class:`InvalidCodiceFiscale` saying what is wrong.

    Checks, in order: length; character class at each position (letters where letters go, digits or
    omocodia letters where digits go); month letter; day (01-31, or 41-71 for women, within the month's
    length); check character.
    """
    code = normalise(cf)
    if len(code) != CF_LENGTH:
        raise InvalidCodiceFiscale(f"codice fiscale must be {CF_LENGTH} characters, got {len(code)}")
    if _CHARACTER_CLASSES.fullmatch(code) is None:  # one scan for a well-formed code; the loop says where it fails
        _refuse_character_classes(code)
    month = code[8]
    if month not in _MONTH_DAYS:
        raise InvalidCodiceFiscale(f"position 9 is not a month letter (one of {MONTH_LETTERS})", 9)
    day = _decode_digit(code[9]) * 10 + _decode_digit(code[10])
    if day > 40:
        day -= 40
    if not 1 <= day <= _MONTH_DAYS[month]:
        raise InvalidCodiceFiscale(
            "day at positions 10-11 must be 01-31 (41-71 for women) and within the month's length", 10
        )
    expected = _check_character_of(code[:15])
    if code[15] != expected:
        # Never name the expected character: with the other 15 it would hand the sender a valid code.
        raise InvalidCodiceFiscale("bad check character at position 16 (a typing error in the code?)", 16)
    return code


def is_valid(cf: str) -> bool:
    """Whether ``cf`` is a valid codice fiscale (after normalisation), omocodia variants included."""
    try:
        validate(cf)
    except InvalidCodiceFiscale:
        return False
    return True


_EMBEDDED: Final = re.compile(
    r"(?=([A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]))"
)


def contains_codice_fiscale(text: str) -> bool:
    """Whether ``text`` holds a valid codice fiscale anywhere in it, in either case (``REF-rssmra85t10a562s-1``)."""
    return any(is_valid(match.group(1)) for match in _EMBEDDED.finditer(text.upper()))


_SHAPED: Final = re.compile(
    r"(?=([A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]))"
)
_NOT_ALPHANUMERIC: Final = re.compile(r"[^0-9A-Z]+")
_STP_ENI_RUN: Final = re.compile(r"(?:STP|ENI)[0-9]{13}")


def _shaped_like_a_code(run: str) -> bool:
    """Whether 16 characters are a codice fiscale but for the check character (which is not looked at)."""
    try:
        validate(run[:15] + check_character(run[:15]))
    except InvalidCodiceFiscale:
        return False
    return True


def contains_person_identifier(text: str) -> bool:
    """Whether ``text`` holds something that identifies a person, however it is disguised: a codice fiscale
    (omocodia variants included) *whatever its check character*, or an STP/ENI code.

    The text is compatibility-normalised (NFKC, so full-width letters count), upper-cased and stripped of
    everything but ``0-9A-Z`` before the scan, so separators and case (``nri-pla_90e10.f205a``) hide
    nothing. A wrong check character is a typing error in a real code, not a code of nobody: a run with the
    shape, month and day of a codice fiscale is personal whatever its last letter. This is the screen for
    identifiers partners choose (message, correlation and request ids), which the gateway writes to its
    append-only audit log where erasure can never reach them.
    """
    folded = _NOT_ALPHANUMERIC.sub("", unicodedata.normalize("NFKC", text).upper())
    if _STP_ENI_RUN.search(folded):
        return True
    return any(_shaped_like_a_code(match.group(1)) for match in _SHAPED.finditer(folded))


def is_omocodic(cf: str) -> bool:
    """Whether a valid codice fiscale is an omocodia variant (a letter in at least one digit position)."""
    code = validate(cf)
    return any(code[index] in _OMOCODIA_TO_DIGIT for index in OMOCODIA_POSITIONS)


def canonical(cf: str) -> str:
    """The de-omocodised form of a valid codice fiscale, with its check character recomputed.

    Every omocodia variant of a code maps to the same value; a code without omocodia maps to itself.
    Raises :class:`InvalidCodiceFiscale` when ``cf`` is not valid.
    """
    chars = list(validate(cf))
    for index in OMOCODIA_POSITIONS:
        chars[index] = _OMOCODIA_TO_DIGIT.get(chars[index], chars[index])
    first15 = "".join(chars[:15])
    return first15 + check_character(first15)


def omocodic_variant(cf: str, substitutions: int) -> str:
    """The omocodia variant of ``cf`` with the rightmost ``substitutions`` digit positions replaced.

    This is the order the Agenzia delle Entrate uses (position 15 first, then 14, 13, 11, 10, 8, 7).
    ``substitutions`` is 0-7; 0 returns the canonical form. The check character is recomputed.
    """
    if not 0 <= substitutions <= len(OMOCODIA_POSITIONS):
        raise ValueError(f"substitutions must be 0-{len(OMOCODIA_POSITIONS)}, got {substitutions}")
    chars = list(canonical(cf))
    for index in OMOCODIA_POSITIONS[len(OMOCODIA_POSITIONS) - substitutions :]:
        chars[index] = _DIGIT_TO_OMOCODIA[chars[index]]
    first15 = "".join(chars[:15])
    return first15 + check_character(first15)


def is_stp_eni(code: str) -> bool:
    """Whether ``code`` (after normalisation) is an STP or ENI code: prefix, 3 + 3 + 7 digits."""
    return _STP_ENI_RE.fullmatch(normalise(code)) is not None


def classify(value: str) -> PersonIdentifierKind:
    """Classify a person identifier as ``"cf"``, ``"stp"`` or ``"eni"``.

    A value that starts with ``STP`` or ``ENI`` followed by a digit is judged as an STP/ENI code (a codice
    fiscale has a letter at position 4, so the two cannot be confused). Anything else must be a valid
    codice fiscale. Raises :class:`InvalidPersonIdentifier` (:class:`InvalidCodiceFiscale` for codes
    judged as a codice fiscale) when the value is neither.
    """
    code = normalise(value)
    prefix = code[:3]
    if prefix in ("STP", "ENI") and len(code) > 3 and code[3] in _DIGITS:
        if _STP_ENI_RE.fullmatch(code) is None:
            raise InvalidPersonIdentifier(
                f"{prefix} code must be {prefix} followed by 13 digits (3 region, 3 health authority, 7 progressive)"
            )
        return "stp" if prefix == "STP" else "eni"
    validate(code)
    return "cf"
