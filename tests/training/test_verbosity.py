"""Progress output that fits where it goes: a progress bar on a terminal, one line per epoch in
a log file or a pipe (`fit_verbosity`, used by `train`, `kcnn.tuning.search` and the CLI)."""

import io

import pytest

from kcnn.training import fit_verbosity, train


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_auto_is_a_progress_bar_on_a_terminal_and_one_line_per_epoch_elsewhere():
    assert fit_verbosity("auto", Terminal()) == 1
    assert fit_verbosity("auto", io.StringIO()) == 2
    assert fit_verbosity("auto", object()) == 2  # a stream without isatty is no terminal


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_a_verbosity_given_is_kept(verbose):
    assert fit_verbosity(verbose, io.StringIO()) == verbose


def test_train_into_a_file_writes_one_line_per_epoch_and_no_progress_bar_frames(
    capsys, pattern_data
):
    train(
        "tiny_cnn",
        pattern_data,
        epochs=2,
        batch_size=30,
        tensorboard=False,
        precision="float32",
        validation_split=0,
        test=False,
    )
    output = capsys.readouterr().out
    assert "\b" not in output and "\r" not in output
    epoch_lines = [line for line in output.splitlines() if " - loss: " in line]
    assert len(epoch_lines) == 2, output
