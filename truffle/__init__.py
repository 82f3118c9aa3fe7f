"""The core of the Truffle <-> Ashby integration, importing nothing above it: settings, the
database and its tables, secrets and encryption, the Ashby client and contracts, and the use
cases the API's handlers and the activities call (see docs/architecture.md for each module)."""
