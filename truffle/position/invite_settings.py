"""A position's invite settings, versioned with the position: how long the screener link works
(`expiry_days`), when the candidate is reminded (`reminders`), the language of the emails and
the screener page (`language`), and the admin's own invite subject and opening
(`invite_subject`, `invite_intro`). A screening keeps the settings of the version it was sent
with.

The admin's texts are plain text with three placeholders, `{candidate_first_name}`,
`{position_name}` and `{deadline}`: anything else in braces is refused in words when the
position is saved, and the values are put in as plain text (the email is text; a page escapes
it like any other value).
"""

import string
from dataclasses import asdict, dataclass, field
from typing import Any

from truffle.contracts import DEFAULT_REMINDERS, ReminderAt

DEFAULT_EXPIRY_DAYS = 7
MIN_EXPIRY_DAYS = 1
MAX_EXPIRY_DAYS = 30
MAX_REMINDERS = 5
LANGUAGES = ("en", "de", "fr", "es")
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
DEFAULT_LANGUAGE = "en"
PLACEHOLDERS = ("candidate_first_name", "position_name", "deadline")
MAX_SUBJECT_CHARACTERS = 200
MAX_INTRO_CHARACTERS = 2000


class InviteSettingsError(ValueError):
    """A setting that cannot be kept, said in words for the admin."""


@dataclass(frozen=True)
class InviteSettings:
    expiry_days: int = DEFAULT_EXPIRY_DAYS
    reminders: tuple[ReminderAt, ...] = field(default=DEFAULT_REMINDERS)
    language: str = DEFAULT_LANGUAGE
    # None: the standard words, in the position's language.
    invite_subject: str | None = None
    invite_intro: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "expiry_days": self.expiry_days,
            "reminders": [
                {k: v for k, v in asdict(reminder).items() if v is not None}
                for reminder in self.reminders
            ],
            "language": self.language,
            "invite_subject": self.invite_subject,
            "invite_intro": self.invite_intro,
        }


DEFAULT = InviteSettings()


def from_json(stored: dict[str, Any] | None) -> InviteSettings:
    """The settings a version holds; a version from before settings has the defaults, which
    are what every screening had then."""
    if not stored:
        return DEFAULT
    return InviteSettings(
        expiry_days=int(stored.get("expiry_days", DEFAULT_EXPIRY_DAYS)),
        reminders=tuple(ReminderAt(**entry) for entry in stored.get("reminders", [])),
        language=str(stored.get("language", DEFAULT_LANGUAGE)),
        invite_subject=stored.get("invite_subject"),
        invite_intro=stored.get("invite_intro"),
    )


def _placeholders_in(text: str, what: str) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise InviteSettingsError(
            f"The {what} has a brace that is not part of a placeholder: write placeholders "
            f"as {{candidate_first_name}}, {{position_name}} or {{deadline}}, and no other "
            "{ or }."
        ) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = name or ""
            raise InviteSettingsError(
                f"The {what} has an unknown placeholder {{{shown}}}: the placeholders are "
                "{candidate_first_name}, {position_name} and {deadline}."
            )


def _reminder(entry: ReminderAt, expiry_days: int) -> ReminderAt:
    hours = entry.after_invite_hours, entry.before_deadline_hours
    if (hours[0] is None) == (hours[1] is None):
        raise InviteSettingsError(
            "Each reminder is either after_invite_hours or before_deadline_hours, not both "
            "and not neither."
        )
    given = hours[0] if hours[0] is not None else hours[1]
    assert given is not None
    window = expiry_days * 24
    if not 1 <= given < window:
        side = "after the invite" if hours[0] is not None else "before the deadline"
        raise InviteSettingsError(
            f"A reminder {given} hours {side} does not fall within the link's {expiry_days} "
            f"day(s): use 1 to {window - 1} hours."
        )
    return entry


def validated(settings: InviteSettings) -> InviteSettings:
    """The settings as kept (texts stripped, empty texts the standard ones), or
    `InviteSettingsError` in words."""
    if not MIN_EXPIRY_DAYS <= settings.expiry_days <= MAX_EXPIRY_DAYS:
        raise InviteSettingsError(
            f"The link must work for {MIN_EXPIRY_DAYS} to {MAX_EXPIRY_DAYS} days, not "
            f"{settings.expiry_days}."
        )
    if len(settings.reminders) > MAX_REMINDERS:
        raise InviteSettingsError(f"A position has at most {MAX_REMINDERS} reminders.")
    reminders = tuple(_reminder(entry, settings.expiry_days) for entry in settings.reminders)
    if len({entry.kind for entry in reminders}) != len(reminders):
        raise InviteSettingsError("The same reminder is given twice.")
    if settings.language not in LANGUAGES:
        raise InviteSettingsError(
            f"The language {settings.language!r} is not one Truffle writes in: use "
            + ", ".join(LANGUAGES)
            + "."
        )
    subject = (settings.invite_subject or "").strip() or None
    intro = (settings.invite_intro or "").strip() or None
    if subject is not None:
        if len(subject) > MAX_SUBJECT_CHARACTERS:
            raise InviteSettingsError(
                f"The invite subject is at most {MAX_SUBJECT_CHARACTERS} characters."
            )
        if "\n" in subject or "\r" in subject:
            raise InviteSettingsError("The invite subject is one line.")
        _placeholders_in(subject, "invite subject")
    if intro is not None:
        if len(intro) > MAX_INTRO_CHARACTERS:
            raise InviteSettingsError(
                f"The invite opening is at most {MAX_INTRO_CHARACTERS} characters."
            )
        _placeholders_in(intro, "invite opening")
    return InviteSettings(
        expiry_days=settings.expiry_days,
        reminders=tuple(sorted(reminders, key=_reminder_order(settings.expiry_days))),
        language=settings.language,
        invite_subject=subject,
        invite_intro=intro,
    )


def _reminder_order(expiry_days: int) -> Any:
    window_ms = expiry_days * 86_400_000
    return lambda entry: (entry.due_at_ms(0, window_ms), entry.kind)


def render(text: str, *, candidate_first_name: str, position_name: str, deadline: str) -> str:
    """The admin's text with its placeholders filled in, as plain text (validated texts only:
    the values are never read as placeholders themselves)."""
    return text.format_map(
        {
            "candidate_first_name": candidate_first_name,
            "position_name": position_name,
            "deadline": deadline,
        }
    )
