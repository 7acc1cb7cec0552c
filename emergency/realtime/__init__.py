"""Socket.IO: token auth at connect, one room per school, and the publisher the domain uses.

The domain never imports Socket.IO. It queues `Push` envelopes on its session; after the
transaction commits, the session's publisher delivers them (see `emergency.realtime.outbox`).
"""
