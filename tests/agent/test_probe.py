"""Hardware probe: real files of the shapes a Pi and a PC have."""

from __future__ import annotations

from pathlib import Path

from agent.probe import cpu_model, pi_model, probe_hardware, soc_temperature


def test_pi_model_and_temperature_are_read_when_present(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    zone = tmp_path / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("48312\n")
    assert pi_model(model) == "Raspberry Pi 4 Model B Rev 1.4"
    assert soc_temperature(tmp_path / "thermal") == 48.312


def test_absent_pi_files_give_none(tmp_path: Path) -> None:
    assert pi_model(tmp_path / "missing") is None
    assert soc_temperature(tmp_path / "missing") is None


def test_cpu_model_from_x86_and_arm_cpuinfo(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Intel(R) Celeron(R) N4020\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 5 Model B\n")
    assert cpu_model(x86) == "Intel(R) Celeron(R) N4020"
    assert cpu_model(arm) == "Raspberry Pi 5 Model B"


def test_probe_of_this_machine_is_plausible(tmp_path: Path) -> None:
    info = probe_hardware(tmp_path / "not-yet-created")
    assert info.cores >= 1 and info.arch
    assert 0 < info.ram_available_mb <= info.ram_total_mb
    assert info.disk_free_mb > 0
