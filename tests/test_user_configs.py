"""A user's `--config-dir` file that replaces one of cnnlab's is announced at start-up in one line
(a replaced built-in otherwise shows only in changed numbers)."""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli.configs import CONFIG_DIR
from cnnlab.cli.user_configs import replaced

REPO = Path(__file__).resolve().parents[1]


def test_replaced_lists_only_files_with_a_builtin_twin(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "convnet.yaml").write_text("net: {hidden: 32}\n")
    (tmp_path / "model" / "mynet.yaml").write_text("net: {}\n")
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "adamw.yaml").write_text("lr: 0.1\n")
    assert replaced(tmp_path, CONFIG_DIR) == ["model/convnet.yaml", "optimizer/adamw.yaml"]


def test_a_command_without_job_logging_still_announces_it(command, tmp_path, monkeypatch):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    builtin = (REPO / "conf" / "model" / "convnet.yaml").read_text()
    (tmp_path / "conf" / "model" / "convnet.yaml").write_text(
        builtin.replace("hidden: 256", "hidden: 32")
    )
    monkeypatch.chdir(tmp_path)  # --config-dir conf: relative to where the command runs
    proc = command("summary", "--config-dir", "conf", "model=convnet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = "note: --config-dir conf replaces cnnlab's own model/convnet.yaml"
    assert proc.stderr.splitlines().count(line) == 1
    assert "120,042" in proc.stdout  # the user's hidden 32, not cnnlab's 256 (824,970)
