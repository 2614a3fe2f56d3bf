"""``gaitrig install`` into a tmp prefix: files land where systemd and the daemons look."""
from __future__ import annotations

from pathlib import Path

import pytest

from rig.cli import main
from rig.config import NodeConfig, load_config
from rig.ops.install import InstallError, plan


def test_node_install_writes_config_secret_and_units(tmp_path, capsys):
    secret = tmp_path / "node-right.password"
    secret.write_text("s3cret\n")
    prefix = tmp_path / "root"
    assert main(["install", "--role", "node", "--view", "right", "--prefix", str(prefix),
                 "--password-file", str(secret)]) == 0
    config = load_config(NodeConfig, prefix / "etc/gaitrig/node.toml")
    assert config.view == "right" and config.mqtt.username == "node-right"
    password = prefix / "etc/gaitrig/mqtt.password"
    assert password.read_text() == "s3cret\n" and password.stat().st_mode & 0o777 == 0o600
    units = prefix / "etc/systemd/system"
    assert {p.name for p in units.iterdir()} == {"gaitrig-node@.service", "gaitrig-camera-trigger.service"}
    out = capsys.readouterr().out
    assert "skip: creating user" in out  # not prefix /: the machine's users are left alone
    assert "systemctl enable --now gaitrig-node@right.service" in out


def test_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path, capsys):
    assert main(["install", "--role", "coordinator", "--prefix", str(tmp_path), "--dry-run"]) == 0
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert f"would: write {tmp_path}/etc/gaitrig/coordinator.toml" in out
    assert f"would: write {tmp_path}/etc/systemd/system/gaitrig-coordinator.service" in out


def test_an_existing_config_is_kept_unless_forced(tmp_path):
    target = tmp_path / "etc/gaitrig/bridge.toml"
    target.parent.mkdir(parents=True)
    target.write_text("# tuned on site\n")
    assert main(["install", "--role", "bridge", "--prefix", str(tmp_path)]) == 0
    assert target.read_text() == "# tuned on site\n"
    assert main(["install", "--role", "bridge", "--prefix", str(tmp_path), "--force"]) == 0
    assert "[serial]" in target.read_text()


@pytest.mark.parametrize("role,view", [("node", None), ("bridge", "left")])
def test_view_goes_with_nodes_only(tmp_path, role, view):
    with pytest.raises(InstallError, match="--view"):
        plan(role, view=view, prefix=tmp_path)


def test_missing_sources_are_named(tmp_path):
    with pytest.raises(InstallError, match="gaitrig-bridge.service"):
        plan("bridge", prefix=tmp_path, source=tmp_path / "nowhere")


def test_missing_password_file_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["install", "--role", "bridge", "--prefix", str(tmp_path),
                 "--password-file", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not Path(tmp_path / "etc").exists()
