"""Activities: every side effect of a screening (email, Ashby, the database)."""
