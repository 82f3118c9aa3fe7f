"""What tests share, importable from anywhere in `tests/`: factories, processes and ports, the
whole stack as processes, the story's steps, fake activities, and the machine's extras
(PostgreSQL, Chromium). Conftest files hold fixtures only, and test modules import nothing from
each other."""
