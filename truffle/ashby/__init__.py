"""Ashby on Truffle's side: its API as Truffle calls it (`client`), its webhooks (`webhooks`:
endpoints, secrets, signatures, registration) and taking one delivery (`webhook_intake`)."""
