"""``archivist serve``: an OpenAI-compatible HTTP API over the core's services.

A third front end beside the CLI and the window (ARCHITECTURE rule 9): it renders the
assistant (``POST /v1/chat/completions``), the library's search (``POST /v1/search``),
the search encoder (``POST /v1/embeddings``) and the models (``GET /v1/models``). It
reaches no plugin's modules; a turn through the API is the same
:class:`~archivist.assistant.Assistant` turn the window runs, screened by the same
filters.

- :mod:`archivist.api.settings`: what the server is allowed to do (address, limits, CORS).
- :mod:`archivist.api.keys`: the API key (shown once, kept as a SHA-256 digest).
- :mod:`archivist.api.gate`: one generation at a time, a bounded queue behind it.
- :mod:`archivist.api.turns`: one chat turn run on a worker thread, its events handed over.
- :mod:`archivist.api.schemas`: the OpenAI wire format (requests validated by pydantic).
- :mod:`archivist.api.routes`: the FastAPI application.
- :mod:`archivist.api.server`: uvicorn, in the foreground or on a thread (the window's).

FastAPI and uvicorn are imported only here, so ``archivist --help`` stays fast.
"""
