"""Positions: a position and its versions (`positions`), scoring answers against its criteria
(`scoring`), its invite settings, checked in words (`invite_settings`), and the candidate's
words in each language (`translations`, with the gettext catalogs in `locales/`)."""
