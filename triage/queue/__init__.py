"""The queues: who is waiting, in what order, for how long; the physicians' and administrators'
queue pages and their live sockets (``selectors``, ``services``, ``views``, ``consumers``);
the pushes that keep them live are ``triage.realtime``.
"""
