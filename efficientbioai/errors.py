"""Errors a user can act on. Each message says what is wrong and what to do about it."""


class EfficientBioAIError(Exception):
    """Base class: the CLI prints these as one clean message, without a traceback."""


class ConfigError(EfficientBioAIError):
    """A YAML config is missing, malformed, or has an unknown key, wrong type or bad value."""


class InputError(EfficientBioAIError):
    """An image, stack, checkpoint or file given by the user cannot be used as it is."""


class ArtefactError(EfficientBioAIError):
    """A compressed model artefact is missing, incomplete or does not match its manifest."""


class BackendUnavailableError(EfficientBioAIError):
    """An optional engine or library (TensorRT, a GPU, nni, ...) is not installed or usable here."""


class ExportError(EfficientBioAIError):
    """The model could not be traced or exported, or the export does not match torch."""


class ChunkError(EfficientBioAIError):
    """A chunk of a streamed input failed (in a reader, an engine worker or a Dask worker); names the chunk."""


def last_line(exc: BaseException) -> str:
    """The last non-empty line of ``exc``'s message (a backend's own error is often many lines,
    the cause last), or its type when it has none."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
