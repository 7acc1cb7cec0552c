"""Student data retention (NY Education Law §2-d): `purge.purge_student_data` and `emergency privacy`."""
