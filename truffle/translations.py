"""The candidate's words in their position's language (`en`, `de`, `fr`, `es`): the invite, the
reminders and the screener page. The catalogs are gettext's, under `truffle/locales/<language>/
LC_MESSAGES/messages.po` with the compiled `.mo` beside them, both committed; `make catalogs`
extracts the messages again (pybabel), updates every catalog and compiles it. English is the
source language: it needs no catalog.
"""

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel.dates import format_date
from babel.support import NullTranslations, Translations

from truffle.invite_settings import DEFAULT_LANGUAGE, LANGUAGES

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"


@cache
def translations(language: str) -> NullTranslations:
    """The catalog of `language` (English, the source, for a language Truffle does not write)."""
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(LOCALES, [language], DOMAIN)


def deadline_text(deadline: datetime, language: str) -> str:
    """The deadline as the candidate reads it: `Saturday 12 December 2026 at 10:00 UTC`, and
    in another language with its own way of writing a date (`Samstag, 12. Dezember 2026`)."""
    moment = deadline.astimezone(UTC)
    _ = translations(language).gettext
    pattern = "EEEE d MMMM y" if language == DEFAULT_LANGUAGE else "full"
    return _("%(date)s at %(time)s UTC") % {
        "date": format_date(moment.date(), pattern, locale=language),
        "time": moment.strftime("%H:%M"),
    }
