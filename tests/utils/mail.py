"""Reading what the mail sink received, as a test does."""

import asyncio
import ssl
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope

from tests.utils.processes import free_port
from tools import temporal_certs
from truffle.runtime.tls import verified_tls


class MailSink:
    def __init__(self, smtp_port: int, http_port: int, mail_dir: Path) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.mail_dir = mail_dir
        self.base_url = f"http://127.0.0.1:{http_port}"

    def messages_to(self, address: str) -> list[dict[str, object]]:
        response = httpx.get(
            f"{self.base_url}/api/messages", params={"to": address}, verify=verified_tls()
        )
        response.raise_for_status()
        messages: list[dict[str, object]] = response.json()["messages"]
        return messages


class RefusingSmtpServer:
    """A real SMTP server (aiosmtpd) that answers every recipient with `reply`, such as
    `550 5.1.1 No such user` or `451 4.3.0 Try again later`."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.port = 0
        self._controller: Controller | None = None

    async def handle_RCPT(
        self, _server: object, _session: object, _envelope: object, _address: str, _options: object
    ) -> str:
        return self.reply

    def __enter__(self) -> "RefusingSmtpServer":
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._controller is not None
        self._controller.stop()


class AuthenticatingSmtpServer:
    """A real SMTP server (aiosmtpd) that takes mail only from `username`/`password`, and
    keeps what it takes in `received`."""

    def __init__(self, username: str, password: str) -> None:
        self.credentials = (username.encode(), password.encode())
        self.received: list[bytes] = []
        self.port = 0
        self._controller: Controller | None = None

    def _authenticate(
        self, _server: object, _session: object, _envelope: object, _mechanism: str, data: object
    ) -> AuthResult:
        login = (getattr(data, "login", None), getattr(data, "password", None))
        return AuthResult(success=login == self.credentials)

    async def handle_DATA(self, _server: object, _session: object, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        return "250 Message accepted"

    def __enter__(self) -> "AuthenticatingSmtpServer":
        self.port = free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._controller is not None
        self._controller.stop()


class UntrustedTlsSmtpServer:
    """A real SMTP server (aiosmtpd) that offers STARTTLS with a certificate for 127.0.0.1
    signed by a CA of its own, which this machine does not trust; it keeps what it takes in
    `received`."""

    def __init__(self, certificates: Path) -> None:
        self.certificates = certificates
        self.received: list[bytes] = []
        self.port = 0
        self._controller: Controller | None = None

    async def handle_DATA(self, _server: object, _session: object, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        return "250 Message accepted"

    def __enter__(self) -> "UntrustedTlsSmtpServer":
        server = self.certificates / "server"
        temporal_certs.issue(
            self.certificates / "ca", server, self.certificates / "client", ["127.0.0.1"]
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(server / "server.pem", server / "server-key.pem")
        self.port = free_port()
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=context, require_starttls=True
        )
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._controller is not None
        self._controller.stop()


class StallingSmtpServer:
    """A real SMTP server (aiosmtpd) that keeps every message it receives in `received` and, for
    its first `stalls` conversations, stalls for `seconds`: before its greeting
    (`where="greeting"`: nothing has been sent yet), or after it has the whole message and before
    it answers (`where="after_data"`: the message is in, the sender does not know it)."""

    def __init__(self, where: str, seconds: float, stalls: int = 1) -> None:
        assert where in ("greeting", "after_data")
        self.where = where
        self.seconds = seconds
        self.stalls = stalls
        self.stalls_left = 0  # armed once started: the controller's own check connects first
        self.received: list[bytes] = []
        self.port = 0
        self._controller: Controller | None = None

    def _stall_now(self) -> bool:
        if self.stalls_left <= 0:
            return False
        self.stalls_left -= 1
        return True

    async def handle_DATA(self, _server: object, _session: object, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        if self.where == "after_data" and self._stall_now():
            await asyncio.sleep(self.seconds)
        return "250 Message accepted"

    def __enter__(self) -> "StallingSmtpServer":
        self.port = free_port()
        server = self

        class _Controller(Controller):
            def factory(self) -> SMTP:
                return _GreetingStaller(server, self.handler)

        self._controller = _Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        self.stalls_left = self.stalls
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._controller is not None
        self._controller.stop()


class _GreetingStaller(SMTP):
    def __init__(self, server: StallingSmtpServer, handler: object) -> None:
        super().__init__(handler)
        self._stalling = server

    async def _handle_client(self) -> None:
        if self._stalling.where == "greeting" and self._stalling._stall_now():
            await asyncio.sleep(self._stalling.seconds)
        await super()._handle_client()
