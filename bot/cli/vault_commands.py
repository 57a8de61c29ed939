"""``payerbot vault ...``: accounts, their secrets, the lockout flag, and the vault's keys.

Secrets are read from a hidden prompt or, with ``--stdin-json``, from one JSON object on stdin;
never from the command line, where they would land in shell history and ``ps``.

Every command that changes an account or the keys appends an audit record (who: the operating-system
user; what; which account; the ``--reason``), never a secret. The chain key is loaded before the
change, so a command that cannot record fails before it changes anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from bot.audit import AuditAction, AuditTrail, operator_actor
from bot.cli import common
from bot.errors import VaultError
from bot.login import SecondFactorKind
from vault import Keyring, Vault, new_key
from vault.core import check_portal_url
from vault.keyring import create_key_file, read_key_file, replace_key_file

if TYPE_CHECKING:  # the payer registry loads Playwright: imported only when a command needs it
    from bot.portal import Portal

vault_app = typer.Typer(
    name="vault",
    help="Portal accounts, their encrypted secrets and sessions, the lockout flag, and vault keys.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

SECRET_KEYS = {"username", "password", "totp_secret", "answers"}

Payer = Annotated[str, typer.Argument(help="Payer id (one of the registered portals).")]
AccountName = Annotated[str, typer.Argument(help="The portal account's name in payerbot.")]
StdinJson = Annotated[
    bool,
    typer.Option(
        "--stdin-json",
        help='Read secrets as one JSON object on stdin: {"username", "password", "totp_secret", '
        '"answers": {question: answer}}.',
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``payerbot`` app."""
    app.add_typer(vault_app, name="vault")


def _vault(*, need_key: bool = True) -> Vault:
    return Vault.from_settings(common.engine(), common.settings(), need_key=need_key)


Reason = Annotated[
    str | None, typer.Option("--reason", help="Why, recorded in the audit trail with who did it.")
]


def _audit(vault: Vault) -> AuditTrail:
    """The audit trail with its chain key already loaded (or made)."""
    from bot.services import audit_trail

    trail = audit_trail(common.engine(), common.settings(), vault=vault)
    trail.ready()
    return trail


def _record(
    trail: AuditTrail,
    action: AuditAction,
    *,
    payer: str | None = None,
    account: str | None = None,
    outcome: str = "ok",
    **detail: Any,
) -> None:
    """An operator's vault action; ``detail`` names what changed, never a secret value."""
    trail.record(action, outcome, payer=payer, account=account, actor=operator_actor(), detail=detail)


def _check_payer(payer: str) -> type[Portal]:
    from portals import get_portal

    return get_portal(payer)  # UnsupportedAction names the known payers


# --- reading secrets ------------------------------------------------------------------------


def _read_json_secrets() -> dict[str, Any]:
    """One JSON object from stdin; errors name the key, never a value."""
    try:
        data = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        raise VaultError(f"stdin: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise VaultError("stdin: expected one JSON object")
    unknown = sorted(set(data) - SECRET_KEYS)
    if unknown:
        raise VaultError(
            f"stdin: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(SECRET_KEYS))})"
        )
    for key in ("username", "password", "totp_secret"):
        if key in data and not isinstance(data[key], str):
            raise VaultError(f"stdin: {key} must be a string")
    answers = data.get("answers")
    if answers is not None and (
        not isinstance(answers, dict) or not all(isinstance(v, str) for v in answers.values())
    ):
        raise VaultError("stdin: answers must be an object mapping each question to its answer")
    return data


def _prompt_answers() -> dict[str, str]:
    answers: dict[str, str] = {}
    while True:
        question = typer.prompt("Security question (empty to finish)", default="", show_default=False)
        if not question.strip():
            return answers
        answers[question] = typer.prompt("Answer", hide_input=True)


def _prompt_secrets(kind: SecondFactorKind) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": typer.prompt("Username"),
        "password": typer.prompt("Password", hide_input=True, confirmation_prompt=True),
    }
    if kind is SecondFactorKind.TOTP:
        data["totp_secret"] = typer.prompt("TOTP secret (base32 or otpauth:// URI)", hide_input=True)
    if kind is SecondFactorKind.SECURITY_QUESTIONS:
        data["answers"] = _prompt_answers()
    return data


# --- accounts -------------------------------------------------------------------------------


@vault_app.command("add")
@common.command
def add(
    payer: Payer,
    account: AccountName,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Portal URL, https:// unless loopback; sealed (default: the payer's)."),
    ] = None,
    second_factor: Annotated[
        SecondFactorKind | None,
        typer.Option("--second-factor", help="Default: what the payer's portal asks for."),
    ] = None,
    stdin_json: StdinJson = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an existing account's secrets.")
    ] = False,
    reason: Reason = None,
) -> None:
    """Store a portal account: username, password and its second factor, encrypted."""
    portal = _check_payer(payer)
    kind = second_factor or SecondFactorKind(portal.second_factor)
    check_portal_url(url or "")  # before any prompt
    vault = _vault()
    trail = _audit(vault)
    data = _read_json_secrets() if stdin_json else _prompt_secrets(kind)
    vault.add_account(
        payer,
        account,
        username=data.get("username", ""),
        password=data.get("password", ""),
        second_factor=kind.value,
        totp_secret=data.get("totp_secret"),
        answers=data.get("answers"),
        portal_url=url,
        replace=replace,
    )
    _record(
        trail,
        AuditAction.VAULT_ADD,
        payer=payer,
        account=account,
        second_factor=kind.value,
        portal_url=url,
        replace=replace,
        reason=reason,
    )
    common.console.print(f"stored {payer}/{account} ({kind.value}) under key '{vault.keyring.active.kid}'")


@vault_app.command("update")
@common.command
def update(
    payer: Payer,
    account: AccountName,
    stdin_json: StdinJson = False,
    username: Annotated[bool, typer.Option("--username", help="Prompt for a new username.")] = False,
    password: Annotated[bool, typer.Option("--password", help="Prompt for a new password.")] = False,
    totp_secret: Annotated[bool, typer.Option("--totp-secret", help="Prompt for a new TOTP secret.")] = False,
    answers: Annotated[
        bool, typer.Option("--answers", help="Prompt for questions and answers to add.")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", help="New portal URL, sealed with the secrets ('' for the payer's default)."),
    ] = None,
    reason: Reason = None,
) -> None:
    """Change some secrets of an account (with --stdin-json, the keys given are the ones changed)."""
    if url is not None:
        check_portal_url(url)  # before any prompt
    vault = _vault()
    vault.account(payer, account)  # NotFound before any prompt
    trail = _audit(vault)
    if stdin_json:
        data = _read_json_secrets()
    else:
        data = {}
        if username:
            data["username"] = typer.prompt("Username")
        if password:
            data["password"] = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        if totp_secret:
            data["totp_secret"] = typer.prompt("TOTP secret (base32 or otpauth:// URI)", hide_input=True)
        if answers:
            data["answers"] = _prompt_answers()
    if url is not None:
        data["portal_url"] = url
    vault.update_secrets(payer, account, **data)
    # the names of what changed (and the new portal URL, which is no secret), never a value
    _record(
        trail,
        AuditAction.VAULT_UPDATE,
        payer=payer,
        account=account,
        changed=sorted(data),
        portal_url=url,
        reason=reason,
    )
    common.console.print(f"updated {', '.join(sorted(data))} of {payer}/{account}")


@vault_app.command("list")
@common.command
def list_accounts(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for tools.")] = False,
) -> None:
    """Accounts, their second factor, lockout flag, stored session and key ids; never a secret."""
    infos = _vault(need_key=False).accounts()
    if as_json:
        typer.echo(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
        return
    table = Table("payer", "account", "second factor", "state", "session", "keys")
    for info in infos:
        state = "enabled" if info.enabled else f"[red]disabled[/]: {info.disabled_reason or ''}"
        session = info.session_saved_at.isoformat(timespec="seconds") if info.session_saved_at else "-"
        table.add_row(info.payer, info.account, info.second_factor, state, session, ", ".join(info.key_ids))
    common.console.print(table)


@vault_app.command("remove")
@common.command
def remove(
    payer: Payer,
    account: AccountName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    reason: Reason = None,
) -> None:
    """Delete an account and every secret and session stored for it."""
    vault = _vault()
    vault.account(payer, account)
    trail = _audit(vault)
    if not yes:
        typer.confirm(f"delete {payer}/{account} and all its secrets?", abort=True)
    vault.remove_account(payer, account)
    _record(trail, AuditAction.VAULT_REMOVE, payer=payer, account=account, reason=reason)
    common.console.print(f"removed {payer}/{account}")


@vault_app.command("enable")
@common.command
def enable(payer: Payer, account: AccountName, reason: Reason = None) -> None:
    """Re-enable an account after a person fixed what made the portal reject its login."""
    vault = _vault()
    trail = _audit(vault)
    vault.enable(payer, account)
    _record(trail, AuditAction.ACCOUNT_ENABLED, payer=payer, account=account, reason=reason)
    common.console.print(f"enabled {payer}/{account}")


@vault_app.command("disable")
@common.command
def disable(
    payer: Payer,
    account: AccountName,
    reason: Annotated[str, typer.Option("--reason", help="Why, for whoever reads `vault list`.")],
) -> None:
    """Stop every login of an account until `payerbot vault enable`."""
    vault = _vault()
    trail = _audit(vault)
    vault.disable(payer, account, reason)
    _record(trail, AuditAction.ACCOUNT_DISABLED, payer=payer, account=account, reason=reason)
    common.console.print(f"disabled {payer}/{account}")


@vault_app.command("clear-session")
@common.command
def clear_session(payer: Payer, account: AccountName, reason: Reason = None) -> None:
    """Forget the stored browser session, so the next run logs in afresh."""
    vault = _vault()
    vault.account(payer, account)
    trail = _audit(vault)
    vault.clear_session(payer, account)
    _record(trail, AuditAction.SESSION_CLEARED, payer=payer, account=account, reason=reason)
    common.console.print(f"cleared the session of {payer}/{account}")


# --- keys -----------------------------------------------------------------------------------


@vault_app.command("keygen")
@common.command
def keygen(
    kid: Annotated[
        str | None, typer.Option("--kid", help="Key id (default: from a hash of the key).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write a new key file (mode 0600).")] = None,
    add_to: Annotated[
        Path | None, typer.Option("--add-to", help="Add the key to a key file as its new active key.")
    ] = None,
) -> None:
    """Make a vault key: print it (kid:base64), write a new key file, or add it to one."""
    if out is not None and add_to is not None:
        raise VaultError("give --out or --add-to, not both")
    key = new_key(kid)
    if out is not None:
        create_key_file(out, Keyring([key], source=str(out)))
        common.console.print(f"wrote key '{key.kid}' to {out} (mode 0600)")
    elif add_to is not None:
        keyring = Keyring.parse(read_key_file(add_to), source=str(add_to)).with_new_active(key)
        replace_key_file(add_to, keyring)
        common.console.print(
            f"key '{key.kid}' is now the active key of {add_to}; "
            "`payerbot vault rotate` re-seals the records under it"
        )
    else:
        typer.echo(key.line())
        common.err_console.print(
            "set it as PAYERBOT_VAULT_KEY, or keep it in a 0600 file as PAYERBOT_VAULT_KEY_FILE"
        )


@vault_app.command("keys")
@common.command
def keys() -> None:
    """The keyring's key ids (the active one first) and how many records each seals."""
    vault = _vault()
    usage = vault.key_usage()
    table = Table("key id", "role", "records")
    for kid in vault.keyring.kids:
        table.add_row(
            kid, "active" if kid == vault.keyring.active.kid else "read-only", str(usage.get(kid, 0))
        )
    for kid in sorted(set(usage) - set(vault.keyring.kids)):
        table.add_row(kid, "[red]missing from the keyring[/]", str(usage[kid]))
    common.console.print(table)


@vault_app.command("rotate")
@common.command
def rotate(reason: Reason = None) -> None:
    """Re-seal every record under the active key (safe to interrupt and run again)."""
    vault = _vault()
    trail = _audit(vault)
    report = vault.rotate()
    _record(
        trail,
        AuditAction.VAULT_ROTATE,
        outcome="complete" if report.complete else "incomplete",
        active_kid=report.active_kid,
        rotated=report.rotated,
        failed=len(report.failed),
        reason=reason,
    )
    common.console.print(
        f"rotated {report.rotated} record(s) to key '{report.active_kid}'; "
        f"{report.already_current} already under it; {len(report.failed)} failed"
    )
    for line in report.failed:
        common.err_console.print(f"  could not re-seal {line}", highlight=False)
    in_use = ", ".join(f"{kid}: {count}" for kid, count in sorted(report.usage_after.items())) or "none"
    common.console.print(f"records per key now: {in_use}")
    if report.failed:
        raise typer.Exit(common.EXIT_ERROR)


@vault_app.command("retire")
@common.command
def retire(
    kid: Annotated[str, typer.Argument(help="The key id to drop.")],
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Key file to drop it from (default: PAYERBOT_VAULT_KEY_FILE)."),
    ] = None,
    reason: Reason = None,
) -> None:
    """Drop an old key from the keyring, only when no record is sealed with it any more."""
    path = key_file or common.settings().vault_key_file
    keyring = Keyring.from_file(path) if path is not None else Keyring.from_settings(common.settings())
    smaller = keyring.without(kid)
    vault = Vault(common.engine(), keyring)
    vault.check_retirable(kid)
    if path is None:  # nothing changes here: the operator edits the variable
        common.console.print(f"no record uses key '{kid}': remove it from PAYERBOT_VAULT_KEY")
        return
    trail = _audit(vault)
    replace_key_file(path, smaller)
    _record(trail, AuditAction.VAULT_RETIRE, kid=kid, key_file=str(path), reason=reason)
    common.console.print(f"retired key '{kid}' from {path}")
