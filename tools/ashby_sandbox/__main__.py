"""`python -m tools.ashby_sandbox`: the Ashby sandbox of the dev stack."""

import argparse
from collections.abc import Sequence

from tools.ashby_sandbox.app import run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.ashby_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    arguments = parser.parse_args(argv)
    run(arguments.host, arguments.port)


if __name__ == "__main__":
    main()
