"""The ids that admins choose (customers, orders, add-ons, keys): one pattern, everywhere."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

#: Letters, digits, ``.``, ``_`` and ``-``, 1 to 64 of them, but never ``.`` or ``..`` (SPEC
#: §3 v2): spelled without a look-ahead, which pydantic's Rust regex engine does not have.
ID_PATTERN = (
    r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}"
    r"|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}"
    r"|\.\.[A-Za-z0-9._-]{1,62})$"
)

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
CustomerIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
KeyIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
CustomerIdQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
#: An email address as far as statreport checks one: something, an @, a domain with a dot; no
#: space or control character. Spelled with ASCII classes, not ``\s``, which means different
#: things in the server's regex engine (Unicode) and in a JSON Schema's (ECMAScript).
_ADDRESS_PART = r"[^@\x00-\x20\x7f]+"
EMAIL_PATTERN = rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$"


def _deliverable_address(value: str) -> str:
    """An address an email can be sent to, as email-validator judges it (no DNS lookup): no
    line separators or other unsafe characters, no quoting, a real domain. Kept as written, so
    that the weekly email is recorded under exactly the address stored."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address that can be sent to: {exc}") from None
    return value


def deliverable(address: str) -> bool:
    """Whether email can be sent to ``address`` (the check ``EmailAddress`` makes on write)."""
    try:
        _deliverable_address(address)
    except ValueError:
        return False
    return True


#: An address that statreport will send email to (an account manager), checked when written.
EmailAddress = Annotated[
    str,
    StringConstraints(max_length=254, pattern=EMAIL_PATTERN),
    AfterValidator(_deliverable_address),
]
#: A weekly email's recipient in a path: an address, and never a ``/``.
RECIPIENT_PATTERN = r"^[^@/\x00-\x20\x7f]+@[^@/\x00-\x20\x7f]+$"
RecipientPath = Annotated[str, Path(max_length=254, pattern=RECIPIENT_PATTERN)]
#: A file name the server writes (a backup): the id's alphabet, up to 255 characters, never
#: ``.`` or ``..``, so never a path.
FILE_NAME_PATTERN = (
    r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}"
    r"|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,253}"
    r"|\.\.[A-Za-z0-9._-]{1,253})$"
)
#: A UUID in its canonical 36-character form, any version.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#: An instance's id as the wire format writes it.
InstanceIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
#: A named staff token's name (SPEC §10): lower-case letters, digits, ``.``, ``_`` and ``-``,
#: 1 to 64 of them, never ``.`` or ``..``.
_NAME_PATTERN = (
    r"^(?:[a-z0-9_-][a-z0-9._-]{0,63}"
    r"|\.[a-z0-9_-][a-z0-9._-]{0,62}"
    r"|\.\.[a-z0-9._-]{1,62})$"
)
TOKEN_NAME_PATTERN = _NAME_PATTERN
TokenNamePath = Annotated[str, Path(pattern=TOKEN_NAME_PATTERN)]

#: A day of the calendar written ``YYYY-MM-DD``: only real days (30 days hath September; the
#: 29th of February in leap years only), years 0001 to 9999.
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"


def _day_pattern(year: str, leap_year: str) -> str:
    """``YYYY-MM-DD`` of the real days of the years ``year`` matches, 29 February of the years
    ``leap_year`` matches."""
    return (
        rf"^(?:{year}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        rf"|{leap_year}-02-29)$"
    )


DAY_PATTERN = _day_pattern(_YEAR, _LEAP_YEAR)
_DAY = re.compile(DAY_PATTERN)


def _day_text(value: Any) -> Any:
    """A day as text must be ``YYYY-MM-DD``: never a number of seconds, never another form."""
    if isinstance(value, str) and not _DAY.fullmatch(value):
        raise ValueError("must be a day written YYYY-MM-DD, such as 2026-11-22")
    if not isinstance(value, str | date):
        raise ValueError("must be a day written YYYY-MM-DD, such as 2026-11-22")
    return value


#: A day in a request: exactly ``YYYY-MM-DD``, as the document says (pydantic alone would also
#: take ``0`` as 1970-01-01).
Day = Annotated[
    date,
    BeforeValidator(_day_text),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]
DayQuery = Annotated[Day, Query()]

#: A day that reports, evaluations and usage may be asked about: 2000-01-01 to 2999-12-31
#: (no report is older; far from where date arithmetic overflows), stated in the pattern so
#: that the document says what the server accepts.
FIRST_REPORTING_DAY = date(2000, 1, 1)
LAST_REPORTING_DAY = date(2999, 12, 31)
REPORTING_DAY_PATTERN = _day_pattern(
    r"2[0-9]{3}", r"(?:2[0-9](?:0[48]|[2468][048]|[13579][26])|2[048]00)"
)
_REPORTING_DAY = re.compile(REPORTING_DAY_PATTERN)


def _reporting_day_text(value: Any) -> Any:
    """``YYYY-MM-DD`` from 2000-01-01 to 2999-12-31."""
    value = _day_text(value)
    if isinstance(value, str) and not _REPORTING_DAY.fullmatch(value):
        raise ValueError("must be a day from 2000-01-01 to 2999-12-31, written YYYY-MM-DD")
    if isinstance(value, date) and not FIRST_REPORTING_DAY <= value <= LAST_REPORTING_DAY:
        raise ValueError("must be a day from 2000-01-01 to 2999-12-31, written YYYY-MM-DD")
    return value


#: A day asked about in an evaluation, a usage range, a statement or a weekly run.
ReportingDay = Annotated[
    date,
    BeforeValidator(_reporting_day_text),
    WithJsonSchema({"type": "string", "format": "date", "pattern": REPORTING_DAY_PATTERN}),
]
ReportingDayQuery = Annotated[ReportingDay, Query()]
