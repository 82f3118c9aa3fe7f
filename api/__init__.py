"""The HTTP surface: Truffle's admin API, Ashby's partner endpoints and the pages."""
