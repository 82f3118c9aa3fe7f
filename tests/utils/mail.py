"""Reading what the mail sink received, as a test does."""

from pathlib import Path

import httpx


class MailSink:
    def __init__(self, smtp_port: int, http_port: int, mail_dir: Path) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.mail_dir = mail_dir
        self.base_url = f"http://127.0.0.1:{http_port}"

    def messages_to(self, address: str) -> list[dict[str, object]]:
        response = httpx.get(f"{self.base_url}/api/messages", params={"to": address})
        response.raise_for_status()
        messages: list[dict[str, object]] = response.json()["messages"]
        return messages
