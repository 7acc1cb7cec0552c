"""Everything that comes in by SMS: acknowledgements, STOP/START, check-ins and calls for help.

Above alerts and accountability (docs/architecture.md, "Layers"): `inbound.handle_inbound_sms` reads
one message (`replies.classify_reply`, the check-in `grammar`) and hands it to alerts (acknowledge,
opt out) or accountability (`checkins`). The Twilio webhook and `emergency sms receive` both call it.
"""
