"""`tessera sim` forwards every option to the virtual board; other commands still refuse unknown options."""

from __future__ import annotations

import pytest

from tessera.os.cli import main


def test_sim_forwards_its_options_to_the_virtual_board(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["sim", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tessera sim")
    assert "--tiles" in out and "--simulator" in out and "--trace" in out


def test_sim_reports_a_bad_board_option_as_the_boards_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["sim", "--simulator", "modelsim"])
    assert stop.value.code == 2
    assert "invalid choice: 'modelsim'" in capsys.readouterr().err


def test_other_commands_refuse_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["logs", "app.tsi", "--bogus"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
