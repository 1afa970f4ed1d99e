"""``edgefleet doctor agent`` as an operator runs it, against a real broker and controller.

The broker is Mosquitto with TLS and a password file, the controller a real ``controller
run`` process. Failures are real too: a wrong password, a stopped broker, a model larger
than the class allows, and an engine whose child dies by SIGSEGV or SIGILL (a real fault,
injected where the child imports llama_cpp).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.demo.scenario import DemoOptions
from tests.support.faults import crash_on_import
from tests.support.fleet import Fleet
from tests.support.ports import free_port
from tests.support.tls import make_pki

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "doctor-secret-123"
DOCTOR_S = 240.0
"""Seven checks; the engine's smoke child (Python, llama.cpp, a tiny model) and the
broker and controller checks, whose own time limit is 10 s each."""


@pytest.fixture
def controller(fleet: Fleet) -> Fleet:
    """The fleet's controller, once its API answers."""
    fleet.wait(fleet.healthy, DemoOptions().controller_start_s, "the controller's /healthz")
    return fleet


@pytest.fixture
def tls_broker(mosquitto_factory, tmp_path: Path):
    pki = make_pki(tmp_path / "pki")
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "dev-doc", PASSWORD], check=True
    )
    broker = mosquitto_factory(
        [
            "allow_anonymous false",
            f"password_file {passwords}",
            f"cafile {pki / 'ca.crt'}",
            f"certfile {pki / 'server.crt'}",
            f"keyfile {pki / 'server.key'}",
        ]
    )
    broker.pki = pki
    return broker


def _config(tmp_path: Path, broker, fleet: Fleet, **overrides: Any) -> Path:
    config = {
        "device_id": "dev-doc",
        "device_class": "dev-x86-1core",
        "broker_url": f"mqtts://127.0.0.1:{broker.port}",
        "tls_ca_file": str(broker.pki / "ca.crt"),
        "mqtt_username": "dev-doc",
        "mqtt_password": PASSWORD,
        "controller_url": fleet.url,
        "data_dir": str(tmp_path / "data"),
        "gpio_mock": True,
        **overrides,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _doctor(config: Path, *, first_on_path: Path | None = None) -> tuple[int, dict[str, Any]]:
    path = [str(first_on_path)] if first_on_path else []
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "doctor", "agent", "-c", str(config), "--json"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DOCTOR_S,
    )
    report = json.loads(done.stdout)
    return done.returncode, {check["name"]: check for check in report["checks"]}


def test_doctor_passes_on_a_healthy_device(tmp_path, tls_broker, controller, tiny_gguf) -> None:
    code, checks = _doctor(_config(tmp_path, tls_broker, controller, initial_model=str(tiny_gguf)))
    assert {name: c["status"] for name, c in checks.items()} == {
        "cpu": "ok",
        "engine": "ok",
        "memory": "ok",
        "disk": "ok",
        "broker": "ok",
        "controller": "ok",
        "clock": "ok",
    }, checks
    assert code == 0
    engine = checks["engine"]["facts"]
    assert engine["smoke_tokens"] > 0 and "CPU" in engine["system_info"]
    assert engine["cpu_backend"].startswith("libggml-cpu")
    assert checks["broker"]["summary"].startswith(
        f"logged in to mqtts://127.0.0.1:{tls_broker.port}"
    )


def test_doctor_names_a_wrong_password_and_a_stopped_broker(
    tmp_path, tls_broker, controller
) -> None:
    code, checks = _doctor(
        _config(tmp_path, tls_broker, controller, mqtt_password="wrong-password-1")
    )
    assert code == 1 and checks["broker"]["status"] == "fail"
    assert "refused the login" in checks["broker"]["summary"]
    assert "mqtt_password" in checks["broker"]["fix"]
    assert "wrong-password-1" not in json.dumps(checks)  # secrets never in the output

    down = _config(tmp_path, tls_broker, controller, broker_url=f"mqtts://127.0.0.1:{free_port()}")
    code, checks = _doctor(down)
    assert code == 1 and checks["broker"]["status"] == "fail"
    assert "cannot reach" in checks["broker"]["summary"]
    assert checks["controller"]["status"] == "ok"  # the rest still ran


def test_doctor_fails_a_model_over_the_class_budget(tmp_path, tls_broker, controller, tiny_gguf):
    config = _config(
        tmp_path,
        tls_broker,
        controller,
        initial_model=str(tiny_gguf),
        profile_overrides={"memory_budget_mb": 1},
    )
    code, checks = _doctor(config)
    assert code == 1 and checks["memory"]["status"] == "fail"
    assert "allows 1 MB" in checks["memory"]["summary"]
    assert "smaller model" in checks["memory"]["fix"]


@pytest.mark.parametrize("fault", ["SIGSEGV", "SIGILL"])
def test_doctor_names_the_signal_that_killed_the_engine_child(
    tmp_path, tls_broker, controller, fault: str
) -> None:
    faulty = crash_on_import(tmp_path / "fault", "llama_cpp", fault)
    code, checks = _doctor(_config(tmp_path, tls_broker, controller), first_on_path=faulty)
    engine = checks["engine"]
    assert code == 1 and engine["status"] == "fail"
    assert engine["facts"]["crash"] == fault
    assert fault in engine["summary"] and engine["fix"]
    assert checks["broker"]["status"] == "ok"  # only the engine's child died


def _controller_doctor(fleet: Fleet, **settings: str) -> tuple[int, dict[str, Any], str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EDGEFLEET_CONTROLLER_DATA_DIR": str(fleet.workdir / "controller"),
        "EDGEFLEET_CONTROLLER_API_PORT": str(fleet.api_port),
        **{f"EDGEFLEET_CONTROLLER_{key.upper()}": value for key, value in settings.items()},
    }
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "doctor", "controller", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DOCTOR_S,
    )
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}, done.stdout + done.stderr


def test_controller_doctor_checks_its_api_database_and_broker_login(
    tmp_path, controller, mosquitto_factory
) -> None:
    fleet = controller
    passwords = tmp_path / "controller-passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "controller", PASSWORD], check=True
    )
    broker = mosquitto_factory(["allow_anonymous false", f"password_file {passwords}"])
    login = {"broker_url": broker.url, "mqtt_username": "controller"}
    code, checks, _ = _controller_doctor(fleet, **login, mqtt_password=PASSWORD)
    assert {n: c["status"] for n, c in checks.items() if n != "clock"} == {
        "api": "ok",
        "database": "ok",
        "broker": "ok",
        "disk": "ok",
    }, checks
    assert code == (1 if checks["clock"]["status"] == "fail" else 0)

    code, checks, output = _controller_doctor(fleet, **login, mqtt_password="not-the-password-9")
    assert code == 1 and checks["broker"]["status"] == "fail"
    assert "refused the login" in checks["broker"]["summary"]
    assert "not-the-password-9" not in output

    fleet.stop()  # the controller is down: its API check says so
    code, checks, _ = _controller_doctor(fleet, **login, mqtt_password=PASSWORD)
    assert (
        code == 1
        and checks["api"]["status"] == "fail"
        and "does not answer" in checks["api"]["summary"]
    )
