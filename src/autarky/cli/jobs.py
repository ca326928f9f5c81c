"""``autarky jobs …``: post a job with a bounty in escrow, accept, complete, attest, dispute, resolve.

Write commands sign one transaction and wait for its block; ``post`` prints the job id, which the
client computes from the transaction hash (``jobs/job-id``). Read commands ask the node's API
(``/api/v1/jobs…``). ``--deadline`` takes ``+2h``/``+1d`` (from now), epoch ms or ISO 8601.
Evidence is a 32-byte hash: give the text (``--evidence``), a file (``--evidence-file``) or the
hash itself (``--evidence-hash``); the attester must give the same evidence as the provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.lease import evidence_hash
from autarky.cli.options import (
    FeeOpt,
    FromOpt,
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    iso,
    parse_hex32,
    parse_time_ms,
)
from autarky.cli.remote import connect, send_as, tx_summary
from autarky.modules.jobs import keeper as jobs_keeper
from autarky.modules.jobs import messages as jobs
from autarky.modules.jobs.records import STATUSES

app = typer.Typer(
    help="Jobs: a machine posts a job (e.g. maintenance) with a bounty in escrow; a provider accepts "
    "and completes it; an attester confirms; the bounty pays out after the dispute window.",
    no_args_is_help=True,
)

JobArg = Annotated[str, typer.Argument(help="The job id (64 hex characters).", metavar="JOB")]
EvidenceOpt = Annotated[str | None, typer.Option("--evidence", help="Evidence text (its SHA-256 is sent).")]
EvidenceFileOpt = Annotated[
    Path | None, typer.Option("--evidence-file", help="Evidence file (its SHA-256 is sent).")
]
EvidenceHashOpt = Annotated[
    str | None, typer.Option("--evidence-hash", help="The evidence hash itself (64 hex characters).")
]


def _attester(entry: str) -> str:
    """``poster`` and ``owner`` as they are; anything else is a local name or a did:key."""
    return entry if entry in (jobs.POSTER, jobs.OWNER) else current().keyring.resolve(entry)


@app.command("post")
def post(
    sender: FromOpt,
    kind: Annotated[str, typer.Option("--kind", help="maintenance, inspection, calibration, …")],
    description: Annotated[str, typer.Option("--description", help="What is to be done (1-280 characters).")],
    bounty: Annotated[
        int, typer.Option("--bounty", min=1, help="The bounty in base units (paid into escrow).")
    ],
    deadline: Annotated[str, typer.Option("--deadline", help="Done by: +2h, +3d, epoch ms or ISO 8601.")],
    asset: Annotated[str, typer.Option("--asset", help="Asset of the bounty.")] = "aut",
    attester: Annotated[
        list[str] | None,
        typer.Option(
            "--attester",
            help='Who may attest completion: "poster" (the machine), "owner" (its owner), or a name or '
            'did:key (e.g. an oracle reporter); repeatable. Default: "poster".',
        ),
    ] = None,
    arbiter: Annotated[
        str | None, typer.Option("--arbiter", help="Who decides a dispute (without one a dispute refunds).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    print_id: Annotated[
        bool, typer.Option("--print-id", help="Print only the job id (for scripts).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Post a job with BOUNTY in escrow; prints the job id.

    Example:  autarky jobs post --from lathe-2 --kind maintenance --description "replace spindle
              bearing" --bounty 300 --deadline +2d --attester poster --attester owner
    """
    output.set_json_mode(json_out)
    attesters = [_attester(entry) for entry in (attester or [jobs.POSTER])]
    arbiter_did = None if arbiter is None else current().keyring.resolve(arbiter)
    deadline_ms = parse_time_ms(deadline, "--deadline")
    message = jobs.post(kind, description, bounty, asset, deadline_ms, attesters, arbiter_did)
    result = send_as(sender, message, fee, password_file, key_file)
    job_id = jobs_keeper.new_job_id(bytes.fromhex(result["tx_hash"]), 0).hex()
    if print_id and not json_out:
        output.stdout.print(job_id)
        return
    output.emit(
        {"job": job_id, "bounty": bounty, "asset": asset, "deadline_ms": deadline_ms, **result},
        lambda: output.stdout.print(
            f"[bold green]posted[/] {kind} job, {output.fmt_amount(bounty)} {asset} in escrow, due "
            f"{iso(deadline_ms)}: job {job_id}\n  {tx_summary(result)}"
        ),
    )


def _simple(verb: str, build: Any) -> Any:
    def command(
        sender: FromOpt,
        job_id: JobArg,
        fee: FeeOpt = 1,
        password_file: PasswordFileOpt = None,
        key_file: KeyFileOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        output.set_json_mode(json_out)
        result = send_as(sender, build(parse_hex32(job_id, "a job id")), fee, password_file, key_file)
        output.emit(
            {"job": job_id, **result},
            lambda: output.stdout.print(f"[bold green]{verb}[/] job {job_id}\n  {tx_summary(result)}"),
        )

    return command


accept = app.command(
    "accept",
    help="Take a job on (before its deadline).\n\nExample:  autarky jobs accept --from mechanic 4f2a…9b",
)(_simple("accepted", jobs.accept))
dispute = app.command(
    "dispute",
    help="The poster (or its owner) contests an attested completion within the dispute window: "
    "the job's arbiter decides, or without one the bounty is refunded.\n\n"
    "Example:  autarky jobs dispute --from lathe-2 4f2a…9b",
)(_simple("disputed", jobs.dispute))
cancel = app.command(
    "cancel",
    help="The poster (or its owner) withdraws a job nobody accepted; the bounty is refunded.\n\n"
    "Example:  autarky jobs cancel --from lathe-2 4f2a…9b",
)(_simple("cancelled", jobs.cancel))


@app.command("complete")
def complete(
    sender: FromOpt,
    job_id: JobArg,
    evidence: EvidenceOpt = None,
    evidence_file: EvidenceFileOpt = None,
    evidence_hash_hex: EvidenceHashOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The provider reports the work done, with the hash of its evidence (before the deadline).

    Example:  autarky jobs complete --from mechanic 4f2a…9b --evidence-file service-report.pdf
    """
    output.set_json_mode(json_out)
    digest = evidence_hash(evidence, evidence_file, evidence_hash_hex)
    result = send_as(
        sender, jobs.complete(parse_hex32(job_id, "a job id"), digest), fee, password_file, key_file
    )
    output.emit(
        {"job": job_id, "evidence": digest.hex(), **result},
        lambda: output.stdout.print(
            f"[bold green]completed[/] job {job_id} (evidence {digest.hex()[:16]}…)\n  {tx_summary(result)}"
        ),
    )


@app.command("attest")
def attest(
    sender: FromOpt,
    job_id: JobArg,
    evidence: EvidenceOpt = None,
    evidence_file: EvidenceFileOpt = None,
    evidence_hash_hex: EvidenceHashOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """An allowed attester confirms the completion (with the provider's evidence).

    The dispute window opens; after it the bounty pays out.

    Example:  autarky jobs attest --from owner 4f2a…9b --evidence-file service-report.pdf
    """
    output.set_json_mode(json_out)
    digest = evidence_hash(evidence, evidence_file, evidence_hash_hex)
    message = jobs.attest(parse_hex32(job_id, "a job id"), digest)
    result = send_as(sender, message, fee, password_file, key_file)
    output.emit(
        {"job": job_id, "evidence": digest.hex(), **result},
        lambda: output.stdout.print(f"[bold green]attested[/] job {job_id}\n  {tx_summary(result)}"),
    )


@app.command("resolve")
def resolve(
    sender: FromOpt,
    job_id: JobArg,
    provider_amount: Annotated[
        int, typer.Option("--provider-amount", min=0, help="What the provider gets; the rest goes back.")
    ],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The arbiter decides a disputed job: --provider-amount to the provider, the rest to the poster.

    Example:  autarky jobs resolve --from coop 4f2a…9b --provider-amount 150
    """
    output.set_json_mode(json_out)
    result = send_as(
        sender, jobs.resolve(parse_hex32(job_id, "a job id"), provider_amount), fee, password_file, key_file
    )
    output.emit(
        {"job": job_id, "provider_amount": provider_amount, **result},
        lambda: output.stdout.print(f"[bold green]resolved[/] job {job_id}\n  {tx_summary(result)}"),
    )


@app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only jobs in this status: {', '.join(STATUSES)}.")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only jobs this account has a part in (name or did:key).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List jobs, newest first.

    Example:  autarky jobs list --status open
    """
    output.set_json_mode(json_out)
    if status is not None and status not in STATUSES:
        raise UsageProblem(f"--status is one of {', '.join(STATUSES)}")
    did = None if account is None else current().keyring.resolve(account)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.jobs(status, did)

    document = run(fetch())

    def human() -> None:
        if not document["jobs"]:
            output.stdout.print("no jobs")
            return
        columns = ["job", "kind", "poster", "bounty", "deadline", "status", "provider"]
        if did is not None:
            columns.append("role")
        table = Table(*columns)
        for item in document["jobs"]:
            row = [
                item["id"][:16] + "…",
                item["kind"],
                output.short(item["poster"]),
                f"{output.fmt_amount(item['bounty'])} {item['asset']}",
                iso(item["deadline_ms"]),
                item["status"] if item["outcome"] is None else f"closed: {item['outcome']}",
                output.short(item["provider"]),
            ]
            if did is not None:
                row.append(item["role"])
            table.add_row(*row)
        output.stdout.print(table)

    output.emit(document, human)


@app.command("show")
def show(job_id: JobArg, json_out: JsonOpt = False) -> None:
    """Show one job: its parties, evidence, deadlines and money.

    Example:  autarky jobs show 4f2a…9b --json
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(job_id, "a job id")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.job(raw)

    item = run(fetch())

    def human() -> None:
        out = output.stdout
        state = item["status"] if item["outcome"] is None else f"closed ({item['outcome']})"
        out.print(f"[bold]job {item['id']}[/]  {state}")
        out.print(f"  {item['kind']}: {item['description']}")
        out.print(f"  poster     {item['poster']}")
        out.print(
            f"  bounty     {output.fmt_amount(item['bounty'])} {item['asset']} "
            f"(paid {item['paid']}, refunded {item['refunded']})"
        )
        out.print(f"  deadline   {iso(item['deadline_ms'])}; attest by {iso(item['attest_by_ms'])}")
        out.print(f"  attesters  {', '.join(item['attesters'])}; arbiter {item['arbiter'] or '-'}")
        out.print(f"  provider   {item['provider'] or '-'}")
        if item["evidence"] is not None:
            out.print(f"  evidence   {item['evidence']}")
        if item["attested_by"] is not None:
            out.print(f"  attested   by {item['attested_by']} at {iso(item['attested_ms'])}")
        if item["pay_at_ms"] is not None:
            out.print(f"  pays out   {iso(item['pay_at_ms'])} unless disputed")

    output.emit(item, human)
