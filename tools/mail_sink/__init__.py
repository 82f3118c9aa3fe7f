"""Local SMTP sink for development and tests: stores every message as an .eml file and shows
them on a small web page and JSON API."""

from tools.mail_sink.server import PortInUseError, run

__all__ = ["PortInUseError", "run"]
