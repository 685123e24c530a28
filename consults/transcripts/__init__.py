"""Consult audio and its transcripts: live chunks and uploaded files, the Celery tasks that
transcribe them with the speech engine (``consults.speech``), the physician's transcript pages.

``selectors`` (reads), ``services`` (writes), ``tasks`` (ml queue), ``views`` (HTTP).
"""
