"""`emergency playbooks check` prints problems one per line and exits 1, or a summary and 0."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from emergency.playbooks.cli import check
from tests.playbooks.helpers import STANDARD_DIR


def test_check_standard_set():
    result = CliRunner().invoke(check, [str(STANDARD_DIR)])
    assert result.exit_code == 0
    assert result.output == ("8 playbooks OK: hold, secure, lockdown, evacuate, shelter, early_dismissal, "
                             "medical, reunification\n")


def test_check_uses_playbooks_dir_from_the_environment(tmp_path):
    result = CliRunner(env={"PLAYBOOKS_DIR": str(STANDARD_DIR)}).invoke(check, [])
    assert result.exit_code == 0 and result.output.startswith("8 playbooks OK")


def test_check_reports_problems_and_fails(tmp_path):
    directory = tmp_path / "playbooks"
    shutil.copytree(STANDARD_DIR, directory)
    path = directory / "hold.yaml"
    path.write_text(path.read_text().replace("channels: [push, sms]", "channels: [push, sms, sms]", 1))
    (directory / "extra.yml").write_text("")
    result = CliRunner().invoke(check, [str(directory)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"{directory / 'extra.yml'}:1:1: the file is empty"
    assert lines[1].startswith(f"{path}:")
    assert lines[1].endswith("notifications[0].channels[2]: duplicate channel 'sms'")
    assert len(lines) == 3 and "no playbook with key 'hold'" in lines[2]


def test_check_is_mounted_under_the_playbooks_group():
    from emergency.playbooks.cli import playbooks

    result = CliRunner().invoke(playbooks, ["check", str(STANDARD_DIR)])
    assert result.exit_code == 0 and result.output.startswith("8 playbooks OK")
