"""trio-infer: a trio-native, structured-concurrency HTTP client for inference servers."""

from ._budget import ConnectionBudget as ConnectionBudget
from ._budget import Destination as Destination
from ._budget import connection_budget as connection_budget
from ._client import Client as Client
from ._endpoint import Endpoint as Endpoint
from ._endpoint import parse_endpoint as parse_endpoint
from ._errors import ClientClosed as ClientClosed
from ._errors import ConfigError as ConfigError
from ._errors import ConnectError as ConnectError
from ._errors import ConnectTimeout as ConnectTimeout
from ._errors import Error as Error
from ._errors import FileDescriptorsExhaustedError as FileDescriptorsExhaustedError
from ._errors import HTTPStatusError as HTTPStatusError
from ._errors import InvalidRequest as InvalidRequest
from ._errors import PoolTimeout as PoolTimeout
from ._errors import PortsExhaustedError as PortsExhaustedError
from ._errors import ReadError as ReadError
from ._errors import ReadTimeout as ReadTimeout
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._errors import RequestMayHaveBeenProcessed as RequestMayHaveBeenProcessed
from ._errors import ResponseTooLarge as ResponseTooLarge
from ._errors import StreamClosed as StreamClosed
from ._errors import TimeoutError as TimeoutError
from ._errors import TotalTimeout as TotalTimeout
from ._errors import TransportError as TransportError
from ._errors import UsageError as UsageError
from ._errors import WriteError as WriteError
from ._errors import WriteTimeout as WriteTimeout
from ._headers import Headers as Headers
from ._keepalive import KeepAlive as KeepAlive
from ._kserve import InferResult as InferResult
from ._kserve import KServeAPI as KServeAPI
from ._kserve import KServeError as KServeError
from ._openai import ChoiceDelta as ChoiceDelta
from ._openai import ChoiceSummary as ChoiceSummary
from ._openai import Completion as Completion
from ._openai import Embeddings as Embeddings
from ._openai import IncompleteStream as IncompleteStream
from ._openai import Model as Model
from ._openai import OpenAIAPI as OpenAIAPI
from ._openai import OpenAIError as OpenAIError
from ._openai import StreamChunk as StreamChunk
from ._openai import StreamSummary as StreamSummary
from ._openai import TokenStream as TokenStream
from ._openai import Usage as Usage
from ._requester import Requester as Requester
from ._response import Chunk as Chunk
from ._response import Response as Response
from ._response import ResponseNotRead as ResponseNotRead
from ._response import Timing as Timing
from ._retry import Attempt as Attempt
from ._retry import Retry as Retry
from ._sse import Line as Line
from ._sse import ServerSentEvent as ServerSentEvent
from ._stats import ClientStats as ClientStats
from ._stats import EndpointStats as EndpointStats
from ._stats import SourceStats as SourceStats
from ._tensor import Tensor as Tensor
from ._timeouts import Timeouts as Timeouts

__version__ = "0.1.0"


def _fix_module_names() -> None:
    import contextlib

    # Reprs, docs and pickles should name the public path, not the private module.
    for name, value in list(globals().items()):
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("trio_infer._"):
            with contextlib.suppress(AttributeError, TypeError):
                value.__module__ = __name__


_fix_module_names()
del _fix_module_names
