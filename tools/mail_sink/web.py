"""The dev-only web page and JSON API over the mail directory."""

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from tools.mail_sink.store import MailStore, StoredMessage

# Trailing punctuation usually closes the sentence around a link rather than belonging to it.
_LINK = re.compile(r"https?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter()


def get_store(request: Request) -> MailStore:
    store: MailStore = request.app.state.mail_store
    return store


StoreDep = Annotated[MailStore, Depends(get_store)]


class MessageOut(BaseModel):
    id: str
    received_at: datetime
    sender: str = Field(serialization_alias="from")
    to: list[str]
    subject: str
    text: str
    html: str | None


class MessageList(BaseModel):
    messages: list[MessageOut]


@dataclass(frozen=True)
class TextSegment:
    text: str
    is_link: bool


def split_links(text: str) -> list[TextSegment]:
    """Cut `text` into plain runs and URLs so the template can escape both and link the URLs."""
    segments: list[TextSegment] = []
    position = 0
    for match in _LINK.finditer(text):
        segments.append(TextSegment(text[position : match.start()], is_link=False))
        segments.append(TextSegment(match.group(), is_link=True))
        position = match.end()
    segments.append(TextSegment(text[position:], is_link=False))
    return segments


@router.get("/", response_class=HTMLResponse)
def index(request: Request, store: StoreDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"messages": store.messages()})


@router.get("/messages/{message_id}.eml")
def raw_message(message_id: str, store: StoreDep) -> FileResponse:
    path = store.path_of(message_id)
    if path is None:
        raise HTTPException(status_code=404, detail="message not found")
    return FileResponse(path, media_type="message/rfc822")


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(request: Request, message_id: str, store: StoreDep) -> HTMLResponse:
    message = store.get(message_id)
    if message is None:
        raise HTTPException(status_code=404, detail="message not found")
    return templates.TemplateResponse(
        request, "message.html", {"message": message, "body": split_links(message.text)}
    )


@router.get("/api/messages")
def list_messages(store: StoreDep, to: str | None = None) -> MessageList:
    """Newest first; `to` keeps only messages delivered to that address, ignoring case."""
    messages = store.messages()
    if to is not None:
        wanted = to.casefold()
        messages = [m for m in messages if wanted in (r.casefold() for r in m.recipients)]
    return MessageList(messages=[_message_out(message) for message in messages])


@router.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


def _message_out(message: StoredMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        received_at=message.received_at,
        sender=message.sender,
        to=message.recipients,
        subject=message.subject,
        text=message.text,
        html=message.html,
    )


def create_app(store: MailStore) -> FastAPI:
    app = FastAPI(title="Mail sink")
    app.state.mail_store = store
    app.include_router(router)
    return app
