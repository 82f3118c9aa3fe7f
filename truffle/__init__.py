"""Shared core of the Truffle <-> Ashby integration: settings, database, secrets, CLI."""
