"""Regular expressions for the published JSON Schemas, built from the rules the decoders apply (code lists and
their aliases, the codice fiscale layout, numeric ranges), so that a schema ``pattern`` cannot drift from the
decoder it describes.

Every expression is in the common subset of ECMA-262 with the ``u`` flag (what JSON Schema validators run)
and Python ``re`` (what ``jsonschema`` runs): character classes, ``(?:...)``, ``(?!...)``, ``(?=...)``,
``\\s``, ``\\uXXXX``, and escapes of syntax characters only. Functions return unanchored expressions;
:func:`anchored` turns one into a ``pattern`` that must match the whole string (JSON Schema's ``pattern``
matches anywhere otherwise). Letter case is matched with the simple upper and lower case of each character;
characters whose case mapping is several characters (``ß``) are matched as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from itertools import groupby, permutations
from typing import Final

from gateway.identity.codice_fiscale import CF_LENGTH, MONTH_LETTERS, OMOCODIA_LETTERS, OMOCODIA_POSITIONS
from schemas.codelists import load_codelist

__all__ = [
    "anchored",
    "any_case",
    "decimal_pattern",
    "flag_letters",
    "int_range",
    "person_code",
    "spelling",
]

_SYNTAX: Final = frozenset("^$\\.*+?()[]{}|/")
_CLASS_SPECIAL: Final = frozenset("\\]-[^")
_MONTH_POSITION: Final = 8
"""0-based index of the month letter in a codice fiscale (DM 12/03/1974)."""


def anchored(expression: str) -> str:
    """``expression`` as a ``pattern`` matching the whole string."""
    return f"^(?:{expression})$"


def _escape(char: str, *, in_class: bool = False) -> str:
    if ord(char) > 0x7E or ord(char) < 0x20:
        if ord(char) > 0xFFFF:
            raise ValueError(f"U+{ord(char):X} is outside the Basic Multilingual Plane: no portable escape")
        return f"\\u{ord(char):04x}"
    if char in (_CLASS_SPECIAL if in_class else _SYNTAX):
        return "\\" + char
    return char


def _variants(char: str) -> list[str]:
    return sorted({char} | {c for c in (char.lower(), char.upper()) if len(c) == 1})


def any_case(text: str) -> str:
    """``text`` literally, in any letter case: ``Si`` -> ``[Ss][Ii]``."""
    parts = []
    for char in text:
        variants = _variants(char)
        if len(variants) == 1:
            parts.append(_escape(char))
        else:
            parts.append("[" + "".join(_escape(v, in_class=True) for v in variants) + "]")
    return "".join(parts)


def _normalised(alias: str) -> str:
    """The expression of the values whose normalised form (see :meth:`schemas.codelists.CodeList.resolve`:
    a space after each dot, whitespace collapsed, case folded) is ``alias``."""
    tokens = alias.split(" ")
    expression = ""
    for k, token in enumerate(tokens):
        if k:
            # the normalisation puts a space after every dot, so after one the writer may put none
            expression += "\\s*" if tokens[k - 1].endswith(".") else "\\s+"
        expression += any_case(token)
    return expression


def spelling(codelist: str, codes: Iterable[str] | None = None) -> str:
    """Every spelling code list ``codelist`` resolves to one of ``codes`` (default: all of its codes): the code,
    the Italian label and the aliases, in any letter case, with any spacing and surrounding whitespace."""
    codes_list = load_codelist(codelist)
    wanted = set(codes_list.labels_it if codes is None else codes)
    unknown = wanted - set(codes_list.labels_it)
    if unknown:
        raise ValueError(f"code list {codelist} has no codes {sorted(unknown)}")
    aliases = sorted({alias for alias, code in codes_list.aliases.items() if code in wanted},
                     key=lambda alias: (-len(alias), alias))
    return "\\s*(?:" + "|".join(_normalised(alias) for alias in aliases) + ")\\s*"


def person_code() -> str:
    """A codice fiscale (letters and digits where the layout puts them, omocodia letters allowed, month letter
    at position 9) or an STP/ENI code (``STP``/``ENI`` and 13 digits), in any letter case and with surrounding
    whitespace, as :func:`gateway.identity.codice_fiscale.classify` reads them. The check character and the
    day are not checked by the expression."""
    letter = "[A-Za-z]"
    digit = "[0-9" + OMOCODIA_LETTERS + OMOCODIA_LETTERS.lower() + "]"
    month = "[" + MONTH_LETTERS + MONTH_LETTERS.lower() + "]"
    layout = [month if i == _MONTH_POSITION else digit if i in OMOCODIA_POSITIONS else letter
              for i in range(CF_LENGTH)]
    cf = "".join(part if count == 1 else f"{part}{{{count}}}"
                 for part, count in ((part, len(list(run))) for part, run in groupby(layout)))
    return f"\\s*(?:{cf}|(?:{any_case('STP')}|{any_case('ENI')})[0-9]{{13}})\\s*"


def _same_length(low: str, high: str) -> list[str]:
    """Expressions of the decimal numbers from ``low`` to ``high``, both written with the same digit count."""
    if low == high:
        return [low]
    if len(low) == 1:
        return [_digit(low, high)]
    rest = len(low) - 1
    if low[0] == high[0]:
        return [low[0] + tail for tail in _grouped(_same_length(low[1:], high[1:]))]
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return [_digit(low[0], high[0]) + _digits(rest)]
    result = [low[0] + tail for tail in _grouped(_same_length(low[1:], "9" * rest))]
    if int(low[0]) + 1 <= int(high[0]) - 1:
        result.append(_digit(str(int(low[0]) + 1), str(int(high[0]) - 1)) + _digits(rest))
    result += [high[0] + tail for tail in _grouped(_same_length("0" * rest, high[1:]))]
    return result


def _digit(low: str, high: str) -> str:
    return low if low == high else f"[{low}-{high}]"


def _digits(count: int) -> str:
    return "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _grouped(alternatives: list[str]) -> list[str]:
    return alternatives if len(alternatives) == 1 else ["(?:" + "|".join(alternatives) + ")"]


def int_range(low: int, high: int) -> str:
    """The whole numbers ``low``-``high`` (``low >= 0``) written in decimal without leading zeros."""
    if not 0 <= low <= high:
        raise ValueError("int_range needs 0 <= low <= high")
    alternatives: list[str] = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        last = min(high, 10**digits - 1)
        if first <= last:
            alternatives += _same_length(str(first), str(last))
    return "(?:" + "|".join(alternatives) + ")"


def decimal_pattern(maximum: Decimal, places: int, *, positive: bool = False) -> str:
    """Amounts from 0 (above 0 when ``positive``) to the whole number ``maximum``, with ``.`` or ``,`` before at
    most ``places`` decimals, no sign, no thousands separator and no leading zeros."""
    if maximum != maximum.to_integral_value() or maximum < 1:
        raise ValueError("decimal_pattern needs a whole maximum of at least 1")
    top = int(maximum)
    fraction = f"(?:[.,][0-9]{{1,{places}}})?"
    body = f"{int_range(0, top - 1)}{fraction}|{top}(?:[.,]0{{1,{places}}})?"
    return ("(?!0(?:[.,]0*)?$)" if positive else "") + f"(?:{body})"


def flag_letters(required: Iterable[str], optional: Iterable[str], *, none: str) -> str:
    """Flag letters, each at most once in any order and any case: every ``required`` one and any of the
    ``optional`` ones; ``none`` (or nothing) stands for no flag when none is required."""
    must, may = sorted(set(required)), sorted(set(optional))
    choices: set[str] = set()
    for mask in range(2 ** len(may)):
        letters = must + [letter for k, letter in enumerate(may) if mask >> k & 1]
        choices |= {"".join(order) for order in permutations(letters)}
    alternatives = sorted((any_case(choice) for choice in choices if choice), key=lambda e: (-len(e), e))
    if not must:
        alternatives.append(_escape(none) + "?")
    return "(?:" + "|".join(alternatives) + ")"
