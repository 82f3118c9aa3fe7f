"""The core of the Truffle <-> Ashby integration, importing nothing above it. At the top: every
setting (`settings`), the words the layers share (`contracts`), workspaces and their admin
tokens (`workspaces`) and the audit trail (`audit`); grouped below: `storage`, `security`,
`ashby`, `position`, `screening` and `runtime` (see docs/architecture.md for each module)."""
