"""Booking and the visit page: book a slot or join the on-demand line, reschedule, cancel,
check in, physicians' availability; the patient's visit and waiting pages, no-show marking.

``services`` (writes), ``views`` (HTTP), ``tasks`` (beat); reads in ``consults.selectors``.
"""
