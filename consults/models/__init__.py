"""Consult models, one module per area; import them from here."""

from consults.models.notes import ClinicalNote, NoteRevision  # noqa: F401
from consults.models.recordings import (  # noqa: F401
    FINISHED_CHUNK_STATUSES,
    AudioChunk,
    ChunkStatus,
    Recording,
    Speaker,
    TranscriptSegment,
)
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
