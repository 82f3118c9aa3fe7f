"""The mail sink as the dev stack runs it: `python -m tools.mail_sink`, real SMTP and HTTP."""

import asyncio
import contextlib
import email
import email.policy
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from tests.utils.processes import free_port
from tools.mail_sink.__main__ import main
from tools.mail_sink.server import PortInUseError, run

STARTUP_TIMEOUT_SECONDS = 10.0
SENDER = "screening@truffle.local"
SCREENING_LINK = "https://truffle.local/s/abc123"


@dataclass(frozen=True)
class MailSink:
    process: asyncio.subprocess.Process
    smtp_port: int
    http_port: int
    mail_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def send(self, message: EmailMessage, recipients: list[str]) -> bytes:
        """Deliver `message` over SMTP and return the exact bytes that went over the wire."""
        content = message.as_bytes(policy=email.policy.SMTP)
        await aiosmtplib.send(
            content,
            sender=SENDER,
            recipients=recipients,
            hostname="127.0.0.1",
            port=self.smtp_port,
            # The default EHLO name comes from getfqdn(), which may wait on DNS.
            local_hostname="localhost",
        )
        return content


async def spawn_mail_sink(
    mail_dir: Path, smtp_port: int, http_port: int
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.mail_sink",
        "--host",
        "127.0.0.1",
        "--smtp-port",
        str(smtp_port),
        "--http-port",
        str(http_port),
        "--mail-dir",
        str(mail_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def start_mail_sink(mail_dir: Path) -> MailSink:
    """Spawn `python -m tools.mail_sink` and return once its web page answers."""
    smtp_port, http_port = free_port(), free_port()
    process = await spawn_mail_sink(mail_dir, smtp_port, http_port)
    sink = MailSink(process, smtp_port, http_port, mail_dir)
    if not await answers_health_check(sink):
        if process.returncode is None:
            process.kill()
        _, stderr = await process.communicate()
        pytest.fail(f"mail sink did not start (status {process.returncode}): {stderr.decode()}")
    return sink


async def answers_health_check(sink: MailSink) -> bool:
    """Poll /healthz until it answers, the process exits or the startup timeout passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=sink.base_url) as client:
        while sink.process.returncode is None and loop.time() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).json() == {"ok": True}:
                    return True
            await asyncio.sleep(0.05)
    return False


@pytest.fixture(scope="module")
async def sink(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MailSink]:
    # The directory does not exist yet: the sink must create it for the first message.
    sink = await start_mail_sink(tmp_path_factory.mktemp("mail_sink") / "mail")
    yield sink
    sink.process.terminate()
    await sink.process.communicate()


@pytest.fixture(scope="module")
async def web(sink: MailSink) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sink.base_url) as client:
        yield client


@pytest.fixture
def recipient() -> str:
    """A fresh address per test, so tests sharing one sink only ever look at their own mail."""
    return f"Candidate-{uuid.uuid4().hex[:12]}@Example.com"


@pytest.fixture
def invitation(recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Truffle <{SENDER}>"
    message["To"] = recipient
    message["Subject"] = "Your screening is ready"
    message.set_content(f"Hello,\n\nStart your screening: {SCREENING_LINK}.\n")
    message.add_alternative(
        f'<p>Start your screening <a href="{SCREENING_LINK}">here</a>.</p>\n', subtype="html"
    )
    return message


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port: int = holder.getsockname()[1]
        yield port


async def messages_for(web: httpx.AsyncClient, recipient: str) -> list[dict[str, object]]:
    response = await web.get("/api/messages", params={"to": recipient})
    assert response.status_code == 200
    messages: list[dict[str, object]] = response.json()["messages"]
    return messages


async def test_received_message_is_stored_byte_for_byte_as_eml_file(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    sent = await sink.send(invitation, [recipient])

    [listed] = await messages_for(web, recipient)
    stored = (sink.mail_dir / f"{listed['id']}.eml").read_bytes()
    assert stored.endswith(sent)
    parsed = email.message_from_bytes(stored, _class=EmailMessage, policy=email.policy.default)
    assert parsed["Subject"] == "Your screening is ready"
    text_body = parsed.get_body(preferencelist=("plain",))
    assert text_body is not None
    assert SCREENING_LINK in text_body.get_content()
    assert all(path.suffix == ".eml" for path in sink.mail_dir.iterdir())


async def test_api_lists_message_with_decoded_bodies(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    invitation.replace_header("Subject", "Votre entretien est prêt")
    await sink.send(invitation, [recipient])

    [listed] = await messages_for(web, recipient)
    assert listed["from"] == f"Truffle <{SENDER}>"
    assert listed["to"] == [recipient]
    assert listed["subject"] == "Votre entretien est prêt"
    assert listed["text"] == f"Hello,\n\nStart your screening: {SCREENING_LINK}.\n"
    assert listed["html"] == f'<p>Start your screening <a href="{SCREENING_LINK}">here</a>.</p>\n'
    assert isinstance(listed["received_at"], str)


async def test_api_filters_by_envelope_recipient_ignoring_case(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    blind_copy = f"hiring-{uuid.uuid4().hex[:12]}@example.com"
    await sink.send(invitation, [recipient, blind_copy])

    assert len(await messages_for(web, recipient.upper())) == 1
    assert len(await messages_for(web, blind_copy)) == 1
    assert await messages_for(web, f"other-{recipient}") == []


async def test_api_lists_newest_first(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    await sink.send(invitation, [recipient])
    invitation.replace_header("Subject", "Reminder: your screening is waiting")
    await sink.send(invitation, [recipient])

    subjects = [message["subject"] for message in await messages_for(web, recipient)]
    assert subjects == ["Reminder: your screening is waiting", "Your screening is ready"]


async def test_index_page_escapes_subject(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    invitation.replace_header("Subject", "<script>alert('owned')</script>")
    await sink.send(invitation, [recipient])

    [listed] = await messages_for(web, recipient)
    page = (await web.get("/")).text
    assert "<h1>Mail sink</h1>" in page
    assert "<script>" not in page
    assert f'<a href="/messages/{listed["id"]}">&lt;script&gt;alert(' in page


async def test_message_page_shows_headers_and_clickable_links(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    await sink.send(invitation, [recipient])
    [listed] = await messages_for(web, recipient)

    response = await web.get(f"/messages/{listed['id']}")

    assert response.status_code == 200
    assert "Your screening is ready" in response.text
    assert f"<th>To</th><td>{recipient}</td>" in response.text
    assert f'<a href="{SCREENING_LINK}">{SCREENING_LINK}</a>.' in response.text
    assert f'<a href="/messages/{listed["id"]}.eml">' in response.text


async def test_raw_message_is_served_as_rfc822(
    sink: MailSink, web: httpx.AsyncClient, recipient: str, invitation: EmailMessage
) -> None:
    sent = await sink.send(invitation, [recipient])
    [listed] = await messages_for(web, recipient)

    response = await web.get(f"/messages/{listed['id']}.eml")

    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.content == (sink.mail_dir / f"{listed['id']}.eml").read_bytes()
    assert response.content.endswith(sent)


@pytest.mark.parametrize(
    "path",
    [
        "/messages/20250101T120000000000Z-0123abcd",
        "/messages/20250101T120000000000Z-0123abcd.eml",
        "/messages/not-a-message",
        "/messages/..%2F..%2Fetc%2Fpasswd",
        "/messages/..%2F..%2Fetc%2Fpasswd.eml",
        "/messages/%2E%2E%2Fmail.eml",
    ],
)
async def test_unknown_or_malformed_message_ids_are_not_found(
    web: httpx.AsyncClient, path: str
) -> None:
    assert (await web.get(path)).status_code == 404


async def test_process_exits_cleanly_on_sigterm_and_sigint(tmp_path: Path) -> None:
    signals = [signal.SIGTERM, signal.SIGINT]
    # Started side by side because each start pays for importing FastAPI.
    sinks = await asyncio.gather(*(start_mail_sink(tmp_path / number.name) for number in signals))

    for sink, signal_number in zip(sinks, signals, strict=True):
        sink.process.send_signal(signal_number)
    outputs = await asyncio.gather(*(sink.process.communicate() for sink in sinks))

    assert [sink.process.returncode for sink in sinks] == [0, 0]
    assert all(b"Traceback" not in stderr for _, stderr in outputs)


def test_cli_reports_busy_port_in_one_line(
    tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--smtp-port", str(busy_port), "--http-port", str(free_port())]

    exit_code = main([*arguments, "--mail-dir", str(tmp_path / "mail")])

    assert exit_code == 1
    assert capsys.readouterr().err == f"mail sink: port {busy_port} is already in use\n"


@pytest.mark.parametrize("busy", ["smtp", "http"])
def test_run_raises_port_in_use_before_serving(tmp_path: Path, busy_port: int, busy: str) -> None:
    smtp_port, http_port = (busy_port, free_port()) if busy == "smtp" else (free_port(), busy_port)

    with pytest.raises(PortInUseError) as raised:
        run("127.0.0.1", smtp_port, http_port, tmp_path / "mail")

    assert raised.value.port == busy_port
