"""The ``edgefleet`` command over HTTP: every group against a real controller, as a viewer,
an operator and an admin; tables, --json, refusals and their exit codes."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from controller.client.connection import ExitCode
from shared.suites.builtin import builtin_bytes
from tests.controller.client.conftest import Cli
from tests.controller.web.fleet import DEVICES, HOSTILE_MODEL, Dashboard
from tests.support.ports import free_port


def test_devices_list_is_a_table_for_people_and_json_for_scripts(cli: Cli) -> None:
    table = cli("viewer", "devices", "list")
    assert table.code == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:4] == ["id", "class", "status", "model"]
    for device_id in DEVICES:
        assert any(line.split()[0] == device_id for line in table.stdout.splitlines()[2:])
    assert HOSTILE_MODEL[:20] in table.stdout  # shown as text, not as markup
    rows = cli("viewer", "devices", "list", "--json").json()
    assert set(DEVICES) <= {row["id"] for row in rows}
    assert next(r for r in rows if r["id"] == "s1")["model_id"] == "m-small"
    small = cli("viewer", "devices", "list", "--class", "small-box", "--json").json()
    assert {row["id"] for row in small} == {"s1", "s2"}


def test_device_show_and_an_unknown_device(cli: Cli) -> None:
    shown = cli("viewer", "devices", "show", "b1")
    assert shown.code == 0 and "big-box" in shown.stdout and "m-small" in shown.stdout
    shown_json = cli("viewer", "devices", "show", "b1", "--json").json()
    assert shown_json["refine"] is True and shown_json["strategy"] == "refine:1"
    assert "refine:1" in shown.stdout  # its schema-1 flag, read as the strategy it means
    missing = cli("viewer", "devices", "show", "no-such-box")
    assert missing.code == ExitCode.NOT_FOUND == 6
    assert "device 'no-such-box' not found" in missing.stderr and missing.stdout == ""


def test_a_viewer_cannot_enroll_and_is_told_which_role_it_needs(cli: Cli) -> None:
    refused = cli("viewer", "devices", "enroll", "pi-new", "--class", "small-box")
    assert refused.code == ExitCode.FORBIDDEN == 5
    assert "needs the operator role; your token has viewer" in refused.stderr
    assert cli("viewer", "devices", "show", "pi-new").code == ExitCode.NOT_FOUND


def test_an_operator_enrolls_a_device_and_revokes_its_login(cli: Cli) -> None:
    enrolled = cli("operator", "devices", "enroll", "pi-kitchen-01", "--class", "small-box")
    assert enrolled.code == 0, enrolled.stderr
    assert "shown only now" in enrolled.stdout
    password = next(line for line in enrolled.stdout.splitlines() if "password:" in line)
    assert len(password.split(":", 1)[1].strip()) >= 16
    shown = cli("viewer", "devices", "show", "pi-kitchen-01", "--json").json()
    assert shown["enrolled"] is True and shown["device_class"] == "small-box"
    revoked = cli("operator", "devices", "revoke", "pi-kitchen-01", "--json").json()
    assert revoked == {"device_id": "pi-kitchen-01", "revoked": 1}
    assert cli("operator", "devices", "revoke", "nobody").code == ExitCode.NOT_FOUND


def test_an_admin_enrolls_a_site_from_a_csv_and_gets_the_logins_as_csv(
    cli: Cli, tmp_path: Path
) -> None:
    site = tmp_path / "site.csv"
    site.write_text("id,device_class,location\nclinic-01,small-box,ward\nclinic-02,big-box,\n")
    refused = cli("operator", "devices", "enroll-many", str(site))
    assert refused.code == ExitCode.FORBIDDEN and "needs the admin role" in refused.stderr
    enrolled = cli("admin", "devices", "enroll-many", str(site))
    assert enrolled.code == 0, enrolled.stderr
    logins = list(csv.DictReader(io.StringIO(enrolled.stdout)))
    assert [row["device_id"] for row in logins] == ["clinic-01", "clinic-02"]
    assert all(row["username"] == row["device_id"] and len(row["password"]) >= 16 for row in logins)
    assert "shown only now" in enrolled.stderr
    shown = cli("viewer", "devices", "show", "clinic-01", "--json").json()
    assert (shown["enrolled"], shown["location"], shown["device_class"]) == (
        True,
        "ward",
        "small-box",
    )
    again = cli("admin", "devices", "enroll-many", str(site))
    assert again.code == ExitCode.API_ERROR and "enrolled already" in again.stderr
    assert again.stdout == ""
    bad = tmp_path / "bad.csv"
    bad.write_text("id,colour\nclinic-03,red\n")
    wrong_header = cli("admin", "devices", "enroll-many", str(bad))
    assert wrong_header.code == ExitCode.USAGE and "header must name 'id'" in wrong_header.stderr
    assert cli("viewer", "devices", "show", "clinic-03").code == ExitCode.NOT_FOUND


def test_bad_missing_token_and_unreachable_controller_have_their_own_exit_codes(
    cli: Cli, fleet: Dashboard
) -> None:
    fleet.api.tokens["forged"] = "eft_forged-token-that-this-controller-never-made"
    bad = cli("forged", "devices", "list")
    assert bad.code == ExitCode.UNAUTHORIZED == 4
    assert "unknown or revoked token" in bad.stderr
    assert fleet.api.tokens["forged"] not in bad.stderr  # secrets stay out of messages
    none = cli(None, "devices", "list")
    assert none.code == ExitCode.UNAUTHORIZED and "EDGEFLEET_TOKEN" in none.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    down = cli("viewer", "devices", "list", url=closed)
    assert down.code == ExitCode.UNREACHABLE == 3
    assert f"cannot reach the controller at {closed}" in down.stderr


def test_models_are_listed_uploaded_with_progress_and_removed(
    cli: Cli, tiny_gguf_factory: Callable[..., Path]
) -> None:
    listed = cli("viewer", "models", "list")
    assert listed.code == 0 and {"m-small", "m-big"} <= {
        line.split()[0] for line in listed.stdout.splitlines()[2:] if line.strip()
    }
    path = tiny_gguf_factory("cli-upload", n_embd=64)
    refused = cli("viewer", "models", "import", str(path), "--id", "cli-upload")
    assert refused.code == ExitCode.FORBIDDEN and "operator" in refused.stderr
    uploaded = cli("operator", "models", "import", str(path), "--id", "cli-upload")
    assert uploaded.code == 0, uploaded.stderr
    assert "cli-upload.gguf" in uploaded.stderr  # the progress bar, on stderr
    assert uploaded.stdout.startswith("cli-upload  sha256=")
    models = {m["id"]: m for m in cli("viewer", "models", "list", "--json").json()}
    assert models["cli-upload"]["size_bytes"] == path.stat().st_size
    again = cli("operator", "models", "import", str(path), "--id", "cli-upload")
    assert again.code == ExitCode.API_ERROR and "already in the registry" in again.stderr
    assert cli("operator", "models", "rm", "cli-upload").code == 0
    assert cli("operator", "models", "rm", "cli-upload").code == ExitCode.NOT_FOUND


def test_plan_show_draft_apply_and_history(cli: Cli) -> None:
    shown = cli("viewer", "plan", "show")
    assert shown.code == 0, shown.stderr
    assert shown.stdout.startswith("dry run, not stored:")
    assert {"s1", "s2", "b1"} <= {line.split()[0] for line in shown.stdout.split("\n")[3:] if line}
    assert cli("viewer", "plan", "draft").code == ExitCode.FORBIDDEN
    drafted = cli("operator", "plan", "draft", "--json").json()
    plan_id = drafted["plan"]["id"]
    assert drafted["plan"]["status"] == "draft"
    history = cli("viewer", "plan", "history", "--json").json()
    assert history[0]["id"] == plan_id
    applied = cli("operator", "plan", "apply", str(plan_id))
    assert applied.code == 0, applied.stderr
    assert cli("viewer", "plan", "history", "--json").json()[0]["status"] == "applied"
    again = cli("operator", "plan", "apply", str(plan_id))
    assert again.code == ExitCode.API_ERROR and "is not a draft" in again.stderr


def test_scores_per_class_with_intervals_and_flags(cli: Cli) -> None:
    board = cli("viewer", "scores")
    assert board.code == 0, board.stderr
    assert "small-box" in board.stdout and "big-box" in board.stdout
    assert "predicted" in board.stdout  # m-big was benchmarked on big-box only
    data = cli("viewer", "scores", "--class", "big-box", "--json").json()
    assert set(data["classes"]) == {"big-box"}
    row = data["classes"]["big-box"][0]
    assert row["B_ci"][0] <= row["B"] <= row["B_ci"][1]


def test_commands_are_sent_by_an_operator_and_listed_with_their_status(cli: Cli) -> None:
    refused = cli("viewer", "commands", "send", "identify", "--device", "s1")
    assert refused.code == ExitCode.FORBIDDEN
    sent = cli("operator", "commands", "send", "identify", "--device", "s1", "--json").json()
    [command] = sent["commands"]
    assert command["device_id"] == "s1" and command["status"] == "sent"
    listed = cli("viewer", "commands", "list", "--device", "s1")
    assert command["id"] in listed.stdout and "identify" in listed.stdout
    unknown = cli("operator", "commands", "send", "identify", "--device", "ghost")
    assert unknown.code == ExitCode.NOT_FOUND and "ghost" in unknown.stderr
    both = cli("operator", "commands", "send", "identify", "--device", "s1", "--class", "x")
    assert both.code == 2


def test_an_operator_assigns_a_model_with_a_strategy_and_a_bad_name_is_refused(cli: Cli) -> None:
    args = ("operator", "commands", "send", "assign", "--device", "s2", "--model", "m-small")
    sent = cli(*args, "--strategy", "vote:5", "--json").json()
    [command] = sent["commands"]
    listed = cli("viewer", "commands", "list", "--device", "s2", "--json").json()
    body = next(c for c in listed if c["id"] == command["id"])["body"]
    assert body["strategy"] == "vote:5" and body["refine"] is False
    refused = cli(*args, "--strategy", "think-hard")
    assert refused.code != 0 and "unknown strategy 'think-hard'" in refused.stderr


def test_tokens_are_an_admin_matter(cli: Cli) -> None:
    refused = cli("operator", "tokens", "create", "ci-bot", "--role", "viewer")
    assert refused.code == ExitCode.FORBIDDEN and "needs the admin role" in refused.stderr
    created = cli("admin", "tokens", "create", "ci-bot", "--role", "viewer", "--json").json()
    assert created["token"].startswith("eft_") and created["role"] == "viewer"
    listed = cli("admin", "tokens", "list")
    assert "ci-bot" in listed.stdout and created["token"] not in listed.stdout
    assert cli("admin", "tokens", "revoke", str(created["id"])).code == 0
    listed_json = cli("admin", "tokens", "list", "--json").json()
    assert next(t for t in listed_json if t["id"] == created["id"])["revoked_at"] is not None


def test_url_and_token_come_from_the_environment_or_a_config_file(
    cli: Cli, fleet: Dashboard, tmp_path: Path
) -> None:
    env = {"EDGEFLEET_URL": fleet.api.url, "EDGEFLEET_TOKEN": fleet.api.tokens["viewer"]}
    from_env = cli.process("devices", "list", "--json", env=env)
    assert from_env.code == 0, from_env.stderr
    assert set(DEVICES) <= {row["id"] for row in from_env.json()}
    config = tmp_path / "client.yaml"
    config.write_text(f"url: {fleet.api.url}\ntoken: {fleet.api.tokens['viewer']}\n")
    from_file = cli.process("scores", "--json", env={"EDGEFLEET_CONFIG": str(config)})
    assert from_file.code == 0, from_file.stderr
    assert "small-box" in from_file.json()["classes"]
    config.write_text("url: x\npassword: y\n")
    bad = cli.process("scores", env={"EDGEFLEET_CONFIG": str(config)})
    assert bad.code == ExitCode.USAGE and "expected only the keys" in bad.stderr


def test_suites_are_uploaded_listed_shown_and_removed(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "school-math.jsonl"
    path.write_bytes(builtin_bytes("gsm8k-sample"))
    refused = cli("viewer", "suites", "upload", str(path))
    assert refused.code == ExitCode.FORBIDDEN and "operator" in refused.stderr
    uploaded = cli("operator", "suites", "upload", str(path))
    assert uploaded.code == 0, uploaded.stderr
    assert uploaded.stdout.startswith("school-math  version 1  sha256=")
    listed = cli("viewer", "suites", "list", "--json").json()
    assert next(s for s in listed if s["id"] == "school-math")["counts"] == {"exact": 100}
    shown = cli("viewer", "suites", "show", "school-math")
    assert "gsm8k-test-0005" in shown.stdout and "exact" in shown.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "type": "exact", "question": "q"}\n[1]\n')
    rejected = cli("operator", "suites", "upload", str(bad))
    assert rejected.code == ExitCode.API_ERROR
    assert "line 1: answer: Field required" in rejected.stderr
    assert "line 2: expected a JSON object" in rejected.stderr
    assert cli("operator", "suites", "rm", "school-math").code == 0
    assert cli("viewer", "suites", "show", "school-math").code == ExitCode.NOT_FOUND
