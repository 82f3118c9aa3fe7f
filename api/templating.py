"""The one Jinja environment of every HTML page, with the console's words (api/vocabulary.py)
as filters and globals, so a template never formats a date or names a status by itself."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

from api import vocabulary
from api.positions import PROMPT_MAX_CHARACTERS

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters.update(
    when=vocabulary.when,
    when_exactly=vocabulary.when_exactly,
    utc_iso=lambda moment: vocabulary.as_utc(moment).isoformat(),
    plural=vocabulary.plural,
    short_id=vocabulary.short_id,
    close_reason=vocabulary.close_reason,
    application_status=vocabulary.application_status,
)
templates.env.globals.update(
    screening_statuses=vocabulary.screening_statuses,
    card_status=vocabulary.card_status,
    position_status=vocabulary.position_status,
    delivery_sentence=vocabulary.delivery_sentence,
    prompt_max=PROMPT_MAX_CHARACTERS,
)
