"""The node's HTTP face: the API (``create_app``), its server (``start_api``), the typed client and
the dashboard.

Server side: :mod:`autarky.web.api` (routes), :mod:`autarky.web.errors` (the one error shape),
:mod:`autarky.web.events` (Server-Sent Events), :mod:`autarky.web.dashboard` (``/`` and ``/docs``),
:mod:`autarky.web.server` (uvicorn in the caller's loop). Client side: :mod:`autarky.web.client`.
"""

from autarky.web.api import create_app
from autarky.web.client import (
    Account,
    AutarkyClient,
    ClientError,
    NotFound,
    Rejected,
    StateProof,
    Submission,
    Unavailable,
    verify_header,
    verify_proof,
)
from autarky.web.server import ApiServer, start_api

__all__ = [
    "Account",
    "ApiServer",
    "AutarkyClient",
    "ClientError",
    "NotFound",
    "Rejected",
    "StateProof",
    "Submission",
    "Unavailable",
    "create_app",
    "start_api",
    "verify_header",
    "verify_proof",
]
