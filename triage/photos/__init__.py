"""Photo triage: intake checks, analysis by the vision engine, physician review, wound
measuring; the photo pages and the analysis task (``services``, ``summary``, ``forms``,
``views``, ``tasks``).
"""
