"""The database: the engine, sessions and the migrations' runner (`db`), the tables
(`tables`) and keyset pagination for every paged list (`keyset`)."""
