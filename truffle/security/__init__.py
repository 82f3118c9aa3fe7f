"""Keeping secrets: Truffle keys and the key ring that seals what is stored (`secrets`), admin
sessions (`sessions`), Temporal payload encryption per screening (`payload_crypto`) and retiring
a secret key (`key_rotation`)."""
