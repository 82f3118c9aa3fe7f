"""`python -m tools.mail_sink`: the mail sink of the dev stack."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.mail_sink.server import PortInUseError, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mail_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--mail-dir", type=Path, default=Path(".data/mail"))
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="mail sink: %(message)s")
    # aiosmtpd logs every SMTP command at INFO; only the sink's own lines are worth reading.
    logging.getLogger("tools.mail_sink").setLevel(logging.INFO)
    try:
        run(arguments.host, arguments.smtp_port, arguments.http_port, arguments.mail_dir)
    except PortInUseError as error:
        print(f"mail sink: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
