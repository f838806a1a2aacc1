"""OpenAI-compatible HTTP server: `create_app(ServeSettings)` builds the FastAPI app."""
from .app import create_app
from .settings import ServeSettings

__all__ = ["create_app", "ServeSettings"]
