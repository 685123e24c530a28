"""Consult models, one module per area; import them from here."""

from consults.models.visits import (  # noqa: F401
    ACTIVE_STATUSES,
    AvailabilityException,
    AvailabilityRule,
    ChatMessage,
    Consent,
    ConsentPurpose,
    RoomPresence,
    Visit,
    VisitStatus,
)
