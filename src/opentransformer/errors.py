"""The engine's error types. Each carries a message meant for the user as is;
the CLI prints it on one line and exits non-zero."""


class OpenTransformerError(Exception):
    """Base of every error the engine reports to a user."""


class ModelNotFoundError(OpenTransformerError):
    """A model reference that names no file, directory or downloaded model."""


class ModelFormatError(OpenTransformerError):
    """A model file that is not what it claims: wrong magic, truncated, inconsistent."""


class UnsupportedModelError(OpenTransformerError):
    """A well-formed model that uses an architecture or tensor type we do not run."""


class ContextLengthError(OpenTransformerError):
    """A prompt (plus generation) that does not fit the model's context window."""


class InvalidRequestError(OpenTransformerError):
    """A bad argument: sampling option out of range, empty prompt, malformed messages."""


class HubError(OpenTransformerError):
    """A request to the Hugging Face Hub that failed."""


class HubAuthError(HubError):
    """The Hub refused access: token missing, rejected, or lacking rights; gated repository."""


class HubNotFoundError(HubError):
    """The Hub has no such repository, revision or file."""


class HubConnectionError(HubError):
    """The Hub cannot be reached: no network, or offline mode with nothing cached."""


class XrayReadError(InvalidRequestError):
    """An image file that cannot be read as an X-ray: not an image, truncated, no pixel data, too large."""


class MissingExtraError(OpenTransformerError):
    """A command that needs an optional dependency group (an extra) that is not installed."""
