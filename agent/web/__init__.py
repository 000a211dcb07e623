"""The web chat of ``vidagent serve``: a FastAPI app (REST API + one static page).

:func:`create_app` builds the app from a :class:`ServeConfig` and a :class:`Backend` (perception
and the chat model), so tests can pass their own backend. Nothing runs at import time.
"""

from agent.web.app import create_app
from agent.web.backend import Backend, ServedBackend
from agent.web.config import ServeConfig

__all__ = ["Backend", "ServeConfig", "ServedBackend", "create_app"]
