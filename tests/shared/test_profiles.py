from pathlib import Path

import pytest

from shared.profiles import DeviceProfile, ProfileError, parse_profile

CLASSES = sorted((Path(__file__).parents[2] / "firmware-config" / "classes").glob("*.yaml"))


def test_there_are_profiles_to_check() -> None:
    assert len(CLASSES) >= 5


@pytest.mark.parametrize("path", CLASSES, ids=lambda p: p.stem)
def test_every_firmware_profile_validates_and_is_named_after_its_file(path: Path) -> None:
    profile = parse_profile(path.read_text(), source=str(path))
    assert isinstance(profile, DeviceProfile)
    assert profile.name == path.stem


def test_a_typo_is_an_error_that_names_the_key_and_the_file() -> None:
    text = CLASSES[0].read_text() + "memory_budgt_mb: 10\n"
    with pytest.raises(ProfileError, match=r"x\.yaml: memory_budgt_mb: Extra inputs"):
        parse_profile(text, source="x.yaml")


def test_invalid_yaml_and_non_mapping_are_clear_errors() -> None:
    with pytest.raises(ProfileError, match="not valid YAML"):
        parse_profile("name: [unclosed", source="y.yaml")
    with pytest.raises(ProfileError, match="expected a mapping"):
        parse_profile("- a\n- b\n")


def test_budgets_must_be_positive() -> None:
    text = CLASSES[0].read_text().replace("latency_budget_s:", "latency_budget_s: -1 #")
    with pytest.raises(ProfileError, match="latency_budget_s"):
        parse_profile(text)
