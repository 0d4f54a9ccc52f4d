"""archivist-remote: use a model served elsewhere, through the OpenAI protocol.

A built-in plugin, built like a third party's (it imports only ``archivist``): one model
backend that talks to any OpenAI-compatible server (vLLM, llama.cpp's ``llama-server``,
Ollama, LM Studio, another Archivist's ``archivist serve``). Each server the user adds
(``archivist models add-server``, or the window's Models page) is offered as a model like
any other (``archivist.ModelSource``) and can be chosen per conversation with
``--model NAME``. Retrieval, citations and the safety filter stay on this machine: only the
packed prompt goes to the server.

- ``servers.py``: the servers added, in ``<home>/plugins/remote/servers.json`` (no keys).
- ``keychain.py``: their keys, in the operating system's keychain (``keyring``).
- ``client.py``: the HTTP client (httpx): streaming, timeouts, retries, clear errors.
- ``backend.py``: the backend, its models, and adding, removing and checking servers.

Settings (``config.toml``)::

    [remote]
    connect_timeout = 5     # seconds to open a connection
    read_timeout = 300      # seconds a server may stay silent (a big model's first token)
    retries = 3             # attempts on a connection error, with backoff
"""

from archivist import hookimpl

ARCHIVIST_API_VERSION = "1.1"


@hookimpl
def register_model_backends(register, context):
    from archivist_remote.backend import RemoteBackend

    settings = context.settings.get("remote", {})
    register(RemoteBackend(context.data_dir("remote"), settings if isinstance(settings, dict) else {}))
