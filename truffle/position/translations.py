"""The candidate's words in their position's language (`en`, `de`, `fr`, `es`): the invite, the
reminders and the screener page. The catalogs are gettext's, under
`truffle/position/locales/<language>/LC_MESSAGES/messages.po` with the compiled `.mo` beside
them, both committed; `make catalogs` extracts the messages again (pybabel), updates every
catalog and compiles it. English is the
source language: it needs no catalog.
"""

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel.dates import format_date
from babel.support import NullTranslations, Translations

from truffle.position import invite_settings
from truffle.position.invite_settings import DEFAULT_LANGUAGE, LANGUAGES, InviteSettings

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


def invite_opening(
    settings: InviteSettings,
    *,
    first_name: str,
    job_name: str,
    position_name: str,
    questions: int,
    deadline: str,
) -> tuple[str, str]:
    """The invite's subject and opening paragraph: the admin's own (placeholders filled in as
    plain text) or the standard words, in the settings' language."""
    translation = translations(settings.language)
    _, ngettext = translation.gettext, translation.ngettext

    def filled(text: str) -> str:
        return invite_settings.render(
            text, candidate_first_name=first_name, position_name=position_name, deadline=deadline
        )

    subject = (
        filled(settings.invite_subject)
        if settings.invite_subject
        else _("Your screening for %(job)s") % {"job": job_name}
    )
    opening = (
        filled(settings.invite_intro)
        if settings.invite_intro
        else ngettext(
            "Thank you for applying for %(job)s. The next step is a short written "
            "screening (%(num)d question).",
            "Thank you for applying for %(job)s. The next step is a short written "
            "screening (%(num)d questions).",
            questions,
        )
        % {"job": job_name, "num": questions}
    )
    return subject, opening
