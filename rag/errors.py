"""The project's one exception family: every failure a user can cause says what to do next."""


class RagError(Exception):
    """Base class: a failure with a one-line, user-facing reason."""


class SourceError(RagError):
    """A source file cannot be read into a document (bad format, no text, encrypted...)."""


class IndexStateError(RagError):
    """The index on disk is missing, stale, built differently, or damaged."""


class IndexBusyError(RagError):
    """Another build holds the index lock."""


class QuestionError(RagError):
    """A question that cannot be answered as asked (empty, too long)."""


class SettingsError(RagError):
    """A setting has an unknown name or a bad value."""


class UnknownSourceError(SourceError):
    """A source id that is not in the corpus or the index."""


class StoreUnavailableError(RagError):
    """The search backend (a Milvus server, a Ray cluster) cannot be reached or did not answer in time."""
