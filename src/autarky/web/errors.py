"""The API's one error shape, and the handlers that make every failure answer with it.

Every non-2xx answer of the API has this body (a rejected transaction adds the submission fields
beside ``error``, see ``POST /api/v1/tx``)::

    {"error": {"code": "api.not_found", "message": "no block at height 12"}}

``code`` is stable and machine-readable; ``message`` is for people and may change. Codes:

=====================================  ======  =========================================================
code                                   status  when
=====================================  ======  =========================================================
``api.invalid_request``                400/422 a parameter or body field is missing or has a wrong value
``api.invalid_json``                   400     the body is not JSON
``api.invalid_hex``                    400     a hex string does not decode
``api.invalid_hash``                   400     a transaction hash is not 64 hex characters
``api.invalid_did``                    400     not an Ed25519 did:key (or ``module:<name>`` for balances)
``api.unauthorized``                   401     an admin route without the right ``X-API-Key``
``api.not_found``                      404     no such route, block, transaction or DID
``api.method_not_allowed``             405     the route exists, the method does not
``api.body_too_large``                 413     the body exceeds ``api.max_body_bytes``
``mempool.tx_too_large``               413     the transaction exceeds the mempool's ``max_tx_bytes``
``api.unsupported_media_type``         415     a body type other than ``application/cbor`` or JSON
``core.*``, ``bank.*``, ``identity.*`` 400     the transaction is rejected (stable ledger codes)
``mempool.full``, ``mempool.sender_limit`` 503 no room now; retry after ``Retry-After`` seconds
``node.not_ready``                     503     the node is not started (or is stopping)
``node.fault``, ``node.storage``, ...  503     an operational fault of the node
``api.internal_error``                 500     a bug; never caused by input (the fuzz tests hold this)
=====================================  ======  =========================================================

Three kinds of failure stay apart (STYLE.md): bad input is a typed 4xx raised as :class:`ApiError`
or found by FastAPI's validation; operational faults (:class:`~autarky.node.errors.NodeError`,
SQLite errors) answer 503 with a ``node.*`` code; anything else is a bug, logged with its traceback
and answered 500 with ``api.internal_error``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from autarky.node.errors import ConfigError, CorruptState, EngineError, NodeError, StorageError

log = logging.getLogger("autarky.web")

INVALID_REQUEST = "api.invalid_request"
INVALID_JSON = "api.invalid_json"
INVALID_HEX = "api.invalid_hex"
INVALID_HASH = "api.invalid_hash"
INVALID_DID = "api.invalid_did"
UNAUTHORIZED = "api.unauthorized"
NOT_FOUND = "api.not_found"
METHOD_NOT_ALLOWED = "api.method_not_allowed"
BODY_TOO_LARGE = "api.body_too_large"
UNSUPPORTED_MEDIA_TYPE = "api.unsupported_media_type"
INTERNAL_ERROR = "api.internal_error"
NODE_NOT_READY = "node.not_ready"
NODE_FAULT = "node.fault"
PROOF_UNAVAILABLE = "node.proof_unavailable"

_STATUS_CODES = {
    400: INVALID_REQUEST,
    401: UNAUTHORIZED,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: BODY_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: INVALID_REQUEST,
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input (typed code)"},
    422: {"model": ErrorBody, "description": "A parameter failed validation (`api.invalid_request`)"},
    503: {"model": ErrorBody, "description": "The node is not ready or has a fault (`node.*`)"},
}


class ApiError(Exception):
    """A typed error answer, raised anywhere in a route."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


def node_error_code(exc: Exception) -> str:
    """The ``node.*`` code of an operational fault."""
    if isinstance(exc, CorruptState):
        return "node.corrupt_state"
    if isinstance(exc, StorageError | sqlite3.Error):
        return "node.storage"
    if isinstance(exc, EngineError):
        return "node.engine"
    if isinstance(exc, ConfigError):
        return "node.config"
    return NODE_FAULT


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, INVALID_REQUEST, _validation_message(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, f"api.http_{exc.status_code}")
    if exc.status_code == 404:
        message = f"no route {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, exc.headers)


async def _node_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("operational fault answering %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, node_error_code(exc), str(exc), {"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug: bad input never gets here (tests/property/test_api_fuzz.py). Say so without details.
    log.error("bug answering %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, INTERNAL_ERROR, "internal error; the node logged it")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NodeError, _node_error)
    app.add_exception_handler(sqlite3.Error, _node_error)
    app.add_exception_handler(Exception, _unexpected)
