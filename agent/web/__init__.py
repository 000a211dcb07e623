"""The web chat of ``vidagent serve``: a FastAPI app (REST API + one static page).

:func:`create_app` builds the app from a :class:`ServeConfig` and a :class:`Backend` (perception
and the chat model), so tests can pass their own backend. Nothing runs at import time.
"""

from vidagent.web.app import create_app
from vidagent.web.backend import Backend, ServedBackend
from vidagent.web.config import ServeConfig

__all__ = ["Backend", "ServeConfig", "ServedBackend", "create_app"]
