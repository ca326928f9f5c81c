"""Talking to a running node: the web client, with its answers and failures in CLI terms.

Every command that needs the ledger goes through :func:`connect` (the address comes from ``--node``,
``$AUTARKY_NODE_URL`` or the config) and, to write, :func:`send_tx`, which signs for an explicit sender
account: after ``identity rotate`` an account's key is no longer the key inside its DID, so the
sender cannot be derived from the key.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from autarky.cli.context import current
from autarky.cli.errors import CliError, NodeUnreachable, OperationFailed, UsageProblem, tx_refused
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx

if TYPE_CHECKING:
    from autarky.web.client import AutarkyClient, Submission

# The web client is imported when first needed: importing it loads FastAPI (about 0.3 s), which
# commands that never talk to a node (init, identity new, node replay) should not pay for.


@asynccontextmanager
async def connect() -> AsyncIterator[AutarkyClient]:
    from autarky.web.client import AutarkyClient

    ctx = current()
    async with AutarkyClient(ctx.node_address(), api_key=ctx.node_api_key()) as client:
        try:
            yield client
        except Exception as exc:
            # Commands see CLI errors (NodeUnreachable, TxRefused, ...), never the client's own.
            problem = translate_client_error(exc)
            if problem is None:
                raise
            raise problem from exc


async def account_json(client: AutarkyClient, did: str) -> dict[str, Any]:
    return dataclasses.asdict(await client.account(did))


def submission_json(submission: Submission) -> dict[str, Any]:
    return {
        "tx_hash": submission.tx_hash,
        "status": submission.status,
        "code": submission.code,
        "detail": submission.detail,
        "height": submission.height,
        "receipt": submission.receipt,
    }


def send_as(
    name: str,
    message: Mapping[str, Any],
    fee: int,
    password_file: Path | None,
    key_file: Path | None,
) -> dict[str, Any]:
    """Unlock the local identity ``name`` (its password or key file) and :func:`send_tx` ``message``
    as its account: what a ``--from`` command that writes one message does."""
    from autarky.cli.context import run
    from autarky.cli.keyring import Secrets

    identity, key = current().keyring.unlock(name, Secrets(password_file=password_file, key_file=key_file))
    return run(send_tx(identity.account, key, [message], fee=fee))


async def send_tx(
    sender: str,
    key: SigningKey,
    messages: Sequence[Mapping[str, Any]],
    *,
    fee: int = 1,
    cosigners: Sequence[SigningKey] = (),
    memo: str = "",
) -> dict[str, Any]:
    """Sign ``messages`` as ``sender`` with ``key`` (and co-signers), submit, wait for the block.

    Returns the submission as JSON when the transaction committed with code ``ok``; raises
    :class:`~autarky.cli.errors.TxRefused` (exit 1, with the ledger code) when it was rejected at
    admission or failed in its block.
    """
    async with connect() as client:
        chain_id = await client.chain_id()
        account = await client.account(sender)
        body = TxBody(chain_id, sender, account.sequence, fee, 0, tuple(dict(m) for m in messages), memo)
        submission = await client.submit(sign_tx(body, key, tuple(cosigners)), wait=True)
    result = submission_json(submission)
    if submission.status == "accepted":
        raise OperationFailed(
            f"the node admitted transaction {submission.tx_hash} but did not commit it in time; "
            f"check it later with `autarky tx show {submission.tx_hash}`",
            code="cli.not_committed",
            details=result,
        )
    if not submission.ok:
        receipt = submission.receipt or {}
        raise tx_refused(
            receipt.get("code") or submission.code,
            receipt.get("detail") or submission.detail,
            submission.tx_hash,
            submission.height,
        )
    return result


def tx_summary(result: Mapping[str, Any]) -> str:
    return f"tx {result.get('tx_hash')} committed in block {result.get('height')}"


def translate_client_error(exc: BaseException) -> CliError | None:
    """The CLI error for a failure of the web client (or of the HTTP layer under it)."""
    if "autarky.web.client" not in sys.modules:
        return None  # nothing can have come from the client if it was never imported
    from autarky.web.client import ClientError, NotFound, Rejected, Unavailable

    if isinstance(exc, Unavailable) and exc.status == 0:
        address = _address()
        if isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
            return NodeUnreachable(
                f"no node answers at {address}: start one with `autarky node start` (or `autarky up`), "
                "or pass --node URL",
                code="cli.node_unreachable",
            )
        return OperationFailed(
            f"lost the connection to {address} ({exc.message}); the outcome is unknown, check with "
            "`autarky tx show` or `autarky node status`",
            code="cli.connection_lost",
        )
    if isinstance(exc, Unavailable):
        return OperationFailed(
            f"the node is busy or not ready: {exc.code}: {exc.message}; retry shortly", code=exc.code
        )
    if isinstance(exc, Rejected):
        if exc.code.startswith(("api.invalid", "api.unauthorized")):
            return UsageProblem(f"{exc.code}: {exc.message}", code=exc.code)
        return tx_refused(exc.code, exc.message)
    if isinstance(exc, NotFound):
        return OperationFailed(f"not found: {exc.message}", code=exc.code)
    if isinstance(exc, ClientError):
        return OperationFailed(f"{exc.code}: {exc.message}", code=exc.code)
    return None


def _address() -> str:
    try:
        return current().node_address()
    except Exception:
        return "the configured address"
