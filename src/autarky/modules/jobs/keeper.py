"""The jobs module's state: the only functions that read or write keys under ``jobs/``.

State keys (values are canonical CBOR; ids and their hex are lower case)::

    jobs/params                              the parameters (only if genesis set them)
    jobs/job/<job id hex>                    the job record
    jobs/by_account/<did>/<job id hex>       the account's role: "poster", "provider", "attester"
                                             (named by DID) or "arbiter"
    jobs/by_status/<status>/<job id hex>     True: the jobs in each status
    jobs/due/<due:016d>/<job id hex>         True: end_block's work order (open jobs only)

Job records are never deleted: a closed job stays with its outcome, so the history can be listed.
"""

from __future__ import annotations

from collections.abc import Iterator

from autarky.crypto.did import is_did_key
from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode, decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj
from autarky.modules.jobs.params import DEFAULTS, MAX_TIME_MS, Params, from_cbor
from autarky.modules.jobs.records import JobRecord

PARAMS_KEY = "jobs/params"
JOB_PREFIX = "jobs/job/"
BY_ACCOUNT_PREFIX = "jobs/by_account/"
BY_STATUS_PREFIX = "jobs/by_status/"
DUE_PREFIX = "jobs/due/"
JOB_ID_TAG = "autarky/jobs/job-id"

POSTER_ROLE = "poster"
PROVIDER_ROLE = "provider"
ATTESTER_ROLE = "attester"
ARBITER_ROLE = "arbiter"


def new_job_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/jobs/job-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([JOB_ID_TAG, tx_hash, message_index]))


def job_key(job_id: bytes) -> str:
    return JOB_PREFIX + job_id.hex()


def by_account_key(account: str, job_id: bytes) -> str:
    return f"{BY_ACCOUNT_PREFIX}{account}/{job_id.hex()}"


def by_status_key(status: str, job_id: bytes) -> str:
    return f"{BY_STATUS_PREFIX}{status}/{job_id.hex()}"


def due_key(due_ms: int, job_id: bytes) -> str:
    assert 0 <= due_ms <= MAX_TIME_MS, due_ms
    return f"{DUE_PREFIX}{due_ms:016d}/{job_id.hex()}"


def roles(job: JobRecord) -> dict[str, str]:
    """``account -> role`` for the account index: the poster, named attesters, arbiter, provider."""
    found = {job.poster: POSTER_ROLE}
    for attester in job.attesters:
        if is_did_key(attester):
            found[attester] = ATTESTER_ROLE
    if job.arbiter is not None:
        found[job.arbiter] = ARBITER_ROLE
    if job.provider is not None:
        found[job.provider] = PROVIDER_ROLE
    return found


# ---------------------------------------------------------------------------------------------------
# Reads


def params(state: StateReader) -> Params:
    value = get_obj(state, PARAMS_KEY)
    return DEFAULTS if value is None else from_cbor(value)


def read_job(state: StateReader, job_id: bytes) -> JobRecord | None:
    value = get_obj(state, job_key(job_id))
    return None if value is None else JobRecord.from_cbor(job_id, value)


def jobs_of(state: StateReader, account: str) -> list[tuple[bytes, str]]:
    """``(job id, role)`` of every job ``account`` has a part in, in id order."""
    prefix = f"{BY_ACCOUNT_PREFIX}{account}/"
    return [
        (bytes.fromhex(key[len(prefix) :]), decode_trusted(raw)) for key, raw in state.iter_prefix(prefix)
    ]


def jobs_in(state: StateReader, status: str) -> list[bytes]:
    """Ids of every job in ``status``, in id order."""
    prefix = f"{BY_STATUS_PREFIX}{status}/"
    return [bytes.fromhex(key[len(prefix) :]) for key, _ in state.iter_prefix(prefix)]


def all_jobs(state: StateReader) -> Iterator[JobRecord]:
    for key, raw in state.iter_prefix(JOB_PREFIX):
        yield JobRecord.from_cbor(bytes.fromhex(key[len(JOB_PREFIX) :]), decode_trusted(raw))


def due(state: StateReader, now_ms: int) -> list[bytes]:
    """Ids of the jobs with work due at ``now_ms``, in due time then id order."""
    found: list[bytes] = []
    for key, _ in state.iter_prefix(DUE_PREFIX):
        due_ms, job_hex = key[len(DUE_PREFIX) :].split("/")
        if int(due_ms) > now_ms:
            break
        found.append(bytes.fromhex(job_hex))
    return found


def iter_raw(state: StateReader, prefix: str) -> Iterator[tuple[str, object]]:
    """(the key after ``prefix``, decoded value) for every key under ``prefix`` (for invariants)."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# Writes


def set_params(state: Overlay, value: Params) -> None:
    state.set_obj(PARAMS_KEY, value.to_cbor())


def create_job(state: Overlay, job: JobRecord) -> None:
    """Store a new job with its indexes. The caller has done every check."""
    assert state.get(job_key(job.id)) is None, f"job {job.id.hex()} exists"
    assert job.due_ms is not None
    state.set_obj(job_key(job.id), job.to_cbor())
    for account, role in roles(job).items():
        state.set_obj(by_account_key(account, job.id), role)
    state.set_obj(by_status_key(job.status, job.id), True)
    state.set_obj(due_key(job.due_ms, job.id), True)


def update_job(state: Overlay, before: JobRecord, after: JobRecord) -> None:
    """Store ``after`` in place of ``before`` and move its status, due and account entries."""
    assert before.id == after.id
    state.set_obj(job_key(after.id), after.to_cbor())
    if before.status != after.status:
        state.delete(by_status_key(before.status, before.id))
        state.set_obj(by_status_key(after.status, after.id), True)
    if before.due_ms != after.due_ms:
        if before.due_ms is not None:
            state.delete(due_key(before.due_ms, before.id))
        if after.due_ms is not None:
            state.set_obj(due_key(after.due_ms, after.id), True)
    if before.provider is None and after.provider is not None:
        state.set_obj(by_account_key(after.provider, after.id), PROVIDER_ROLE)
