"""The console's words (api/vocabulary.py): every value a page can show has its words, so no
enum value reaches a page, and times and counts read one way."""

from datetime import UTC, datetime
from enum import StrEnum

import pytest

from api import vocabulary
from truffle.ashby.connections import CardStatus
from truffle.contracts import AshbyOutcome, CloseReason, EmailKind, UpdateKind
from truffle.screening.screening_list import StatusFilter
from truffle.storage.tables import ApplicationStatus


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (CloseReason, vocabulary.CLOSE_REASONS),
        (AshbyOutcome, vocabulary.OUTCOME_WORDS),
        (UpdateKind, vocabulary.UPDATE_WORDS),
        (EmailKind, vocabulary.EMAIL_SENT),
        (EmailKind, vocabulary.EMAIL_FAILED),
        (ApplicationStatus, vocabulary.APPLICATION_WORDS),
        (StatusFilter, vocabulary.STATUS_WORDS),
        (CardStatus, vocabulary.CARD_TONES),
    ],
)
def test_every_value_has_its_words(values: type[StrEnum], words: dict[object, object]) -> None:
    assert set(words) == set(values)


def test_close_reasons_read_as_sentences() -> None:
    assert vocabulary.close_reason("archived_in_ashby") == "Archived in Ashby"
    assert vocabulary.close_reason(None) == ""
    assert "_" not in "".join(vocabulary.CLOSE_REASONS.values())


def test_one_date_time_format_with_its_time_zone() -> None:
    moment = datetime(2026, 12, 4, 14, 5, 33, tzinfo=UTC)
    assert vocabulary.when(moment) == "4 Dec 2026, 14:05 UTC"
    assert vocabulary.when(moment.replace(tzinfo=None)) == "4 Dec 2026, 14:05 UTC"
    assert vocabulary.when_exactly(moment) == "2026-12-04 14:05:33 UTC"


def test_plurals_and_short_ids() -> None:
    assert vocabulary.plural(1, "minute") == "1 minute"
    assert vocabulary.plural(0, "minute") == "0 minutes"
    assert vocabulary.plural(1024, "screening") == "1,024 screenings"
    assert vocabulary.short_id("0f3c6a0e-8d1b-4e53-9a43-1f3b2c4d5e6f") == "0f3c6a0e"
    assert vocabulary.short_id("app-42") == "app-42"


def test_an_invite_sent_again_and_a_planned_reminder_are_in_words() -> None:
    assert vocabulary.email_sent("invite_2") == "Invitation emailed again, with a new link"
    assert vocabulary.email_sent("reminder_after_invite_12h") == (
        "Reminder emailed (12 hours after the invitation)"
    )
    assert vocabulary.email_sent("reminder_before_deadline_1h") == (
        "Reminder emailed (1 hour before the deadline)"
    )
    assert vocabulary.email_failed("reminder_before_deadline_6h") == (
        "The reminder email could not be sent"
    )
