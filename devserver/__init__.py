"""A local OAuth 2.0 authorization server and protected API for tests and the demo.

from devserver import DevServer

with DevServer() as srv:
    srv.add_client("app", secret="s3cret-value", scope="read")
    ...
"""

from devserver.faults import Fault, FaultSet
from devserver.server import DevServer
from devserver.stats import CapturedRequest, Stats

__all__ = ["CapturedRequest", "DevServer", "Fault", "FaultSet", "Stats"]
