"""`emergency push keys` prints a key pair that the service accepts and derives the same public key from."""

from __future__ import annotations

from click.testing import CliRunner

from emergency.cli import main
from emergency.config import Config
from emergency.push.vapid import public_key


def test_push_keys_prints_a_private_key_and_its_public_key():
    result = CliRunner().invoke(main, ["push", "keys"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("VAPID_PRIVATE_KEY="))
    private_key = lines["VAPID_PRIVATE_KEY"]
    assert public_key(private_key) in result.stdout
    Config(ENV="test", VAPID_PRIVATE_KEY=private_key).resolved()  # accepted as a setting


def test_two_runs_give_different_keys():
    runner = CliRunner()
    assert runner.invoke(main, ["push", "keys"]).stdout != runner.invoke(main, ["push", "keys"]).stdout
