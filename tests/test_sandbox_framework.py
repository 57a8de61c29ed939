"""The shared sandbox parts: the server's lifecycle, seeded data, knobs, one-time codes, the CLI."""

from __future__ import annotations

import dataclasses
import json
import socket

import httpx
import pyotp
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from bot.cli import app as cli_app
from sandbox import Knobs, PortalState, SandboxError, SandboxServer, accounts, get_payer, payer_ids
from sandbox.sessions import SessionStore, TotpGuard


def test_server_serves_on_free_ports_and_releases_them_on_stop() -> None:
    server = SandboxServer(["meridian"], seed=3).start()
    url = server.urls["meridian"]
    port = int(url.rsplit(":", 1)[1])
    assert httpx.get(f"{url}/login").status_code == 200
    assert server.portal("meridian").base_url == url
    server.stop()
    assert server.urls == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/login", timeout=2)
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", port))


def test_port_base_puts_payers_on_fixed_ports_and_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(SandboxError, match=f"cannot listen on 127.0.0.1:{taken}"):
            SandboxServer(["meridian"], port_base=taken).start()
    with SandboxServer(["meridian"], port_base=taken) as server:
        assert server.urls == {"meridian": f"http://127.0.0.1:{taken}"}


def test_unknown_payer_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown sandbox payer 'nope' \(known: .*meridian"):
        SandboxServer(["nope"])
    with pytest.raises(SandboxError, match="not served here"):
        SandboxServer(["meridian"]).portal("other")


def test_the_same_seed_gives_the_same_data_and_accounts() -> None:
    payer = get_payer("meridian")
    assert PortalState(payer, 7).truth() == PortalState(payer, 7).truth()
    assert PortalState(payer, 7).truth()["claims"] != PortalState(payer, 8).truth()["claims"]
    assert accounts(seed=7) == accounts(seed=7)
    assert accounts(["meridian"], seed=7)[0].totp_secret != accounts(["meridian"], seed=8)[0].totp_secret
    pyotp.TOTP(accounts(["meridian"])[0].totp_secret or "").now()  # a usable base32 secret


def test_a_payer_with_plans_files_each_claim_under_its_plan_and_number() -> None:
    meridian = get_payer("meridian")
    spec = dataclasses.replace(meridian.data, plans=("North", "South"), pa_plans=("North",), twin_claims=2)
    state = PortalState(dataclasses.replace(meridian, data=spec), 7)
    numbers = [c.claim_number for c in state.claims.values()]
    twins = {n for n in numbers if numbers.count(n) == 2}
    assert len(twins) == 2 and len(numbers) == len(set(numbers)) + 2
    for number in twins:  # one number, two claims: only the plan tells them apart
        north, south = state.claim(number, "North"), state.claim(number, "South")
        assert north and south and north.wording != south.wording
        assert state.claim(number) is None
    assert {p.plan for p in state.pas.values()} == {"North"}
    assert state.add_claim().plan == "North" and state.add_pa().plan == "North"
    with pytest.raises(ValueError, match="no plan 'West'"):
        state.add_claim(plan="West")
    truth = state.truth()
    assert truth["plans"] == ["North", "South"] and all(c["plan"] for c in truth["claims"])
    plain = PortalState(meridian, 7).truth()  # a payer without plans: no plan anywhere
    assert "plans" not in plain and not any("plan" in c for c in plain["claims"] + plain["pas"])


def test_accounts_added_before_start_can_sign_in() -> None:
    server = SandboxServer(["meridian"])
    made = server.portal("meridian").add_account("early-bird", totp_secret=pyotp.random_base32())
    with server, httpx.Client(base_url=server.url("meridian")) as client:
        client.post("/login", data={"username": made.username, "password": made.password})
        page = client.post("/login/verify", data={"code": pyotp.TOTP(made.totp_secret or "").now()})
        assert page.headers["location"] == "/dashboard"


def test_knobs_refuse_out_of_range_values_by_name() -> None:
    with pytest.raises(ValidationError, match="error_rate"):
        Knobs(error_rate=1.5)
    with pytest.raises(ValidationError, match="redesign"):
        Knobs.model_validate({"redesign": "brutalist"})
    with pytest.raises(ValidationError, match="error_statuses"):
        Knobs(error_statuses=(200,))
    assert Knobs().with_changes(maintenance=True).maintenance is True
    with pytest.raises(ValidationError, match="fail_path"):
        Knobs(fail_path="api/claims")  # a path, from its leading slash


def test_fail_path_fails_the_chosen_requests_to_a_path_and_leaves_the_seeded_draw_alone() -> None:
    payer = get_payer("meridian")
    state = PortalState(payer, 7)
    state.set_knobs({"fail_path": "/claims", "fail_after": 1, "fail_times": 2, "error_statuses": [502]})
    paths = ["/claims", "/login", "/claims", "/claims/1", "/claims"]
    assert [state.draw_error(p) for p in paths] == [None, None, 502, 502, None]
    state.set_knobs(state.knobs)  # setting the knobs again starts the count again
    assert [state.draw_error(p) for p in paths] == [None, None, 502, 502, None]
    # requests to the path draw nothing: every other request fails as the same seed would fail it
    plain, aimed = PortalState(payer, 7), PortalState(payer, 7)
    plain.set_knobs({"error_rate": 0.5})
    aimed.set_knobs({"error_rate": 0.5, "fail_path": "/api/", "fail_times": 3})
    others = [plain.draw_error("/page") for _ in range(20)]
    assert [(aimed.draw_error("/api/x"), aimed.draw_error("/page"))[1] for _ in range(20)] == others
    with SandboxServer(["meridian"]) as server, httpx.Client(base_url=server.url("meridian")) as client:
        server.portal("meridian").set_knobs({"fail_path": "/login", "error_statuses": [503]})
        assert [client.get("/login").status_code for _ in range(2)] == [503, 200]


def test_totp_guard_refuses_a_replay_and_an_older_step_after_a_newer_one() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    guard = TotpGuard()
    now = 1_800_000_000.0
    assert guard.check("u", secret, totp.at(now), at=now) == "ok"
    assert guard.check("u", secret, totp.at(now), at=now) == "reused"
    assert guard.check("u", secret, totp.at(now - 30), at=now) == "reused"  # inside the skew window
    assert guard.check("u", secret, totp.at(now + 30), at=now + 30) == "ok"
    assert guard.check("other", secret, totp.at(now), at=now) == "ok"  # per user
    assert guard.check("u", secret, "12345", at=now) == "invalid"


def test_session_store_ends_a_session_past_its_request_limit() -> None:
    store = SessionStore()
    session = store.new()
    assert store.count_request(session, 2) and store.count_request(session, 2)
    assert not store.count_request(session, 2)
    assert store.get(session.id) is None


def test_cli_lists_demo_accounts_as_json_with_urls() -> None:
    result = CliRunner().invoke(cli_app, ["sandbox", "accounts", "--json", "--port-base", "8400"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["username"] for r in rows} >= {"mh.billing", "mh.appeals"}
    meridian = [r for r in rows if r["payer"] == "meridian"]
    port = 8400 + payer_ids().index("meridian")  # payer N (in sorted order) on BASE+N
    assert all(r["totp_secret"] and r["url"] == f"http://127.0.0.1:{port}" for r in meridian)


def test_cli_names_an_unknown_payer() -> None:
    result = CliRunner().invoke(cli_app, ["sandbox", "accounts", "--payer", "nope"])
    assert result.exit_code == 2
    assert "--payer nope: no such sandbox payer" in result.output


def test_cli_names_a_bad_knob_before_serving() -> None:
    result = CliRunner().invoke(cli_app, ["sandbox", "--knobs", '{"error_rate": 3}'])
    assert result.exit_code == 2
    assert "--knobs: error_rate:" in result.output
