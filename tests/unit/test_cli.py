"""`ecs-nic-operator run`: every setting has a flag and an ECSNIC_* variable, both validated the same way; a bad
value is one line and exit status 2 (never a traceback, never a broken --help); --help lists them all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ecs_nic_operator import cli, health
from ecs_nic_operator.config import SETTINGS, SettingError, Settings

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ECSNIC_")}
    return subprocess.run(
        [sys.executable, "-m", "ecs_nic_operator.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def resolved(*argv: str, **environ: str) -> dict[str, object]:
    return vars(cli.resolve(cli.parser().parse_args(["run", *argv]), environ))


def env_names_in_the_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "operator" / "ecs_nic_operator").rglob("*.py"):
        if "devenv" in path.parts:
            continue  # the dev harness's own knobs (e.g. ECSNIC_HELM in hack/) are not operator settings
        names |= set(re.findall(r"\bECSNIC_[A-Z0-9_]+", path.read_text()))
    return names


def test_help_lists_every_environment_variable_the_operator_reads_even_with_a_bad_one_set() -> None:
    result = run_cli("run", "--help", ECSNIC_METRICS_PORT="abc", ECSNIC_LOG_FORMAT="xml")
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\s+", " ", result.stdout)
    code = env_names_in_the_code()
    assert "ECSNIC_METRICS_PORT" in code and len(code) >= 10
    for name in code | {s.env for s in SETTINGS}:
        assert name in text, f"{name} is read by the operator but not shown by --help"
    for s in SETTINGS:
        assert s.flag in text and s.help.split(" (")[0][:30] in text, s.flag
    assert "KUBECONFIG" in text and "--namespace" in text


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("ECSNIC_METRICS_PORT", "abc", "not a port number"),
        ("ECSNIC_HEALTH_PORT", "70000", "not a port number"),
        ("ECSNIC_LOG_FORMAT", "xml", "must be one of text, json"),
        ("ECSNIC_LOG_LEVEL", "loud", "must be one of DEBUG"),
        ("ECSNIC_RESYNC_PERIOD", "-5", "greater than 0"),
        ("ECSNIC_WORKERS", "many", "not a whole number"),
        ("ECSNIC_LEADER_ELECT", "maybe", "not a boolean"),
    ],
)
def test_a_bad_environment_value_is_one_clear_line(env: str, value: str, needle: str) -> None:
    result = run_cli("run", **{env: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{env}={value!r}" in lines[0] and needle in lines[0], lines[0]


def test_a_bad_flag_value_is_one_clear_line() -> None:
    result = run_cli("run", "--metrics-port", "abc")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--metrics-port" in result.stderr and "not a port number" in result.stderr


def test_choices_are_case_insensitive_and_normalised() -> None:
    got = resolved(ECSNIC_LOG_FORMAT="JSON", ECSNIC_LOG_LEVEL="debug")
    assert got["log_format"] == "json" and got["log_level"] == "DEBUG"
    assert resolved("--log-format", "Text")["log_format"] == "text"


def test_flags_win_over_the_environment_and_defaults_fill_the_rest() -> None:
    got = resolved("--metrics-port", "9090", "--leader-elect", ECSNIC_METRICS_PORT="8080", ECSNIC_HEALTH_PORT="8081")
    assert got["metrics_port"] == 9090 and got["health_port"] == 8081 and got["leader_elect"] is True
    defaults = resolved()
    assert {s.name: defaults[s.name] for s in SETTINGS} == {s.name: s.default for s in SETTINGS}
    assert resolved(ECSNIC_LEADER_ELECT="true")["leader_elect"] is True


def test_settings_built_in_code_validate_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECSNIC_WORKERS", "abc")
    with pytest.raises(SettingError, match="ECSNIC_WORKERS='abc'"):
        Settings()
    monkeypatch.setenv("ECSNIC_WORKERS", "8")
    assert Settings().workers == 8


def test_every_setting_reaches_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """_run hands each parsed value on (Settings or health), not only the ones it always had."""
    captured: dict[str, object] = {}
    import kopf

    from ecs_nic_operator import handlers, logs, memory

    monkeypatch.setattr(kopf, "run", lambda **kw: captured.update(kw))
    # Keep the test process as it was: global settings, logging, malloc arenas, health configuration.
    monkeypatch.setattr(handlers.State, "settings", handlers.State.settings)
    monkeypatch.setattr(logs, "configure", lambda *a: None)
    monkeypatch.setattr(memory, "limit_arenas", lambda: None)
    for attr in ("port", "bind_address", "namespaces", "interval", "stale_after", "grace", "stuck_after"):
        monkeypatch.setattr(health.CONFIG, attr, getattr(health.CONFIG, attr))
    argv = ["run", "--spec-retry", "7", "--backoff-min", "2", "--backoff-max", "9", "--dependency-retry", "11"]
    argv += ["--workers", "3", "--cloud-timeout", "4", "--resync-period", "50", "--health-interval", "2"]
    argv += ["--health-stuck-after", "99", "--health-grace", "6"]
    assert cli.main(argv) == 0
    s = handlers.State.settings
    assert (s.spec_retry, s.backoff_min, s.backoff_max, s.dependency_retry) == (7, 2, 9, 11)
    assert (s.workers, s.cloud_timeout, s.resync_period) == (3, 4, 50)
    c = health.CONFIG
    assert (c.interval, c.stale_after, c.grace, c.stuck_after) == (2, 6, 6, 99)
    assert captured["clusterwide"] is True


def test_every_setting_that_is_a_settings_field_is_handed_on_by_name() -> None:
    """A setting added to config.SETTINGS reaches Settings without a line in the CLI (and "" keeps a default)."""
    from dataclasses import fields

    from ecs_nic_operator.config import settings_from

    odd = {s.name: (not s.default) if s.switch else s.default for s in SETTINGS}
    for name, value in odd.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            odd[name] = value + 1
    built = settings_from(odd)
    for f in fields(Settings):
        if f.name in odd and odd[f.name] not in (None, ""):
            assert getattr(built, f.name) == odd[f.name], f.name
    assert settings_from({"operator_namespace": ""}).operator_namespace == Settings().operator_namespace
