"""Test helpers for trio-infer users and for inference-server test suites.

An in-process HTTP/1.1 server with scriptable handlers (see :mod:`trio_infer.testing._server`
for the handler contract), and a multi-process one that shares a listening socket the way
``uvicorn --workers N`` does (:func:`open_worker_server`).
"""

from ._fake_kserve import FakeKServe as FakeKServe
from ._fake_openai import FakeOpenAI as FakeOpenAI
from ._faults import close_after as close_after
from ._faults import drip as drip
from ._faults import refusing_port as refusing_port
from ._faults import sse_then_reset as sse_then_reset
from ._faults import stall as stall
from ._faults import storm as storm
from ._server import DEFAULT_MAX_REQUEST_BODY as DEFAULT_MAX_REQUEST_BODY
from ._server import Handler as Handler
from ._server import Responder as Responder
from ._server import ServerRequest as ServerRequest
from ._server import TestServer as TestServer
from ._server import abort_after as abort_after
from ._server import default_app as default_app
from ._server import open_server as open_server
from ._server import reply as reply
from ._server import serve as serve
from ._server import sse as sse
from ._server import sse_body as sse_body
from ._uvicorn import WORKER_ID_APP as WORKER_ID_APP
from ._uvicorn import open_uvicorn as open_uvicorn
from ._workers import WorkerServer as WorkerServer
from ._workers import open_worker_server as open_worker_server

for _name, _value in list(globals().items()):
    if not _name.startswith("_") and getattr(_value, "__module__", "").startswith(__name__ + "."):
        _value.__module__ = __name__
del _name, _value
