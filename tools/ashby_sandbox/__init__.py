"""A local stand-in for Ashby: its API as Truffle calls it (`apiKey.info`, `assessment.update`)
with API keys and injectable faults, and Ashby's calls to the partner's endpoints."""

from tools.ashby_sandbox.app import create_app, run

__all__ = ["create_app", "run"]
