"""Ashby on Truffle's side: its API as Truffle calls it (`client`), the connection's lifecycle
and its card (`connections`, `connection_health`), Ashby's `assessment.start` and
`assessment.cancel` as use cases (`assessments`), its webhooks (`webhooks`: endpoints, secrets,
signatures, registration), setting them up (`webhook_setup`) and taking one delivery
(`webhook_intake`)."""
