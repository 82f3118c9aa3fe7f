"""The catalogs of the candidate's words: every message translated in every language, and the
committed `.mo` compiled from the committed `.po` (`make catalogs` does both)."""

import pytest
from babel.messages.pofile import read_po

from truffle.position.invite_settings import LANGUAGES
from truffle.position.translations import LOCALES, translations

OTHER_LANGUAGES = [language for language in LANGUAGES if language != "en"]


def test_the_template_lists_the_messages_of_the_candidates_pages_and_emails() -> None:
    with (LOCALES / "messages.pot").open("rb") as file:
        template = read_po(file)
    ids = {message.id if isinstance(message.id, str) else message.id[0] for message in template}
    assert {"Your screening for %(job)s", "Begin", "This screening has expired"} <= ids


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_message_is_translated_and_compiled(language: str) -> None:
    with (LOCALES / "messages.pot").open("rb") as file:
        expected = {message.id for message in read_po(file) if message.id}
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as file:
        catalog = read_po(file, locale=language)
    found = {message.id: message for message in catalog if message.id}
    assert set(found) == expected
    compiled = translations(language)
    for message in found.values():
        assert message.string
        assert not message.fuzzy
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string
        else:
            assert compiled.ngettext(message.id[0], message.id[1], 2) == message.string[1]
