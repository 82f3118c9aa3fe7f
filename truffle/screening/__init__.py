"""A screening once started: its rows (`screenings`), the admin's list (`screening_list`), what
happened to one screening (`screening_view`), sending a failed update to Ashby again
(`redelivery`), sending the invite again and extending the deadline (`invitations`), what a
candidate's life in Ashby does to their screenings (`candidates`), one claim per email before
SMTP (`email_claims`), and the hiring team's report links and page (`report_links`,
`report_view`)."""
