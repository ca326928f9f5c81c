"""Jobs routes: jobs by status and account, one job (module ``jobs``).

    GET /api/v1/jobs/params                          the module's parameters
    GET /api/v1/jobs?status=&account=&limit=         jobs, newest first (an account's: with its role)
    GET /api/v1/jobs/{id}                            one job, with its deadlines spelled out

A job is the record of ``modules/jobs/README.md`` plus ``attest_by_ms`` (the last moment for an
attestation), ``settle_by_ms`` (when it is closed at the latest), ``pay_at_ms`` (when an attested
job pays out, if it is attested) and, when listed by account, ``role`` (``poster``, ``provider``,
``attester`` or ``arbiter``). Writes are signed transactions through ``POST /api/v1/tx``. Prove a
job with ``/api/v1/proofs?key=jobs/job/<id>``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path, Query

from autarky.modules.jobs import JobRecord, JobsModule
from autarky.modules.jobs.records import STATUSES
from autarky.node.node import Node
from autarky.web import views
from autarky.web.api import NodeDep, account_name, lock_id_from_hex
from autarky.web.errors import ERROR_RESPONSES, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

MAX_PER_PAGE = 500
Status = Literal["open", "accepted", "completed", "attested", "disputed", "closed"]


def _jobs_module(node: Node) -> JobsModule:
    return cast(JobsModule, node.app.module("jobs"))


def job_json(job: JobRecord, role: str | None = None) -> dict[str, Any]:
    document = cast(dict[str, Any], views.jsonable(job.to_cbor()))
    pay_at = None if job.attested_ms is None else job.attested_ms + job.dispute_window_ms
    document.update(
        id=job.id.hex(),
        attest_by_ms=job.attest_by_ms,
        settle_by_ms=job.settle_by_ms,
        pay_at_ms=pay_at if job.status == "attested" else None,
    )
    if role is not None:
        document["role"] = role
    return document


@router.get("/params", summary="The jobs module's parameters")
async def params(node: NodeDep) -> dict[str, int]:
    return _jobs_module(node).params(node.state).to_cbor()


@router.get("", summary="Jobs, newest first")
async def jobs(
    node: NodeDep,
    status: Annotated[Status | None, Query(description="only jobs in this status")] = None,
    account: Annotated[str | None, Query(description="only jobs this did:key has a part in")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 100,
) -> dict[str, Any]:
    """`jobs` and `total` before the limit. With `account`, each job carries the account's `role`."""
    module = _jobs_module(node)
    state = node.state
    found: list[tuple[JobRecord, str | None]]
    if account is not None:
        did = account_name(account)
        found = [
            (job, role) for job, role in module.jobs_of(state, did) if status is None or job.status == status
        ]
    elif status is not None:
        found = [(job, None) for job in module.jobs_in(state, status)]
    else:
        found = [(job, None) for name in STATUSES for job in module.jobs_in(state, name)]
    found.sort(key=lambda pair: (-pair[0].created, pair[0].id))
    return {"jobs": [job_json(job, role) for job, role in found[:limit]], "total": len(found)}


@router.get("/{job_id}", summary="One job")
async def job(
    node: NodeDep, job_id: Annotated[str, Path(description="the job id (64 hex characters)")]
) -> dict[str, Any]:
    found = _jobs_module(node).job(node.state, lock_id_from_hex(job_id, "job id"))
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no job {job_id.lower()}")
    return job_json(found)
