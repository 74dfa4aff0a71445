"""emotion_lib.logs: the library's log records reach standard output (a notebook cell) only when asked."""

import logging

from emotion_lib.logs import hide_progress, show_progress


def test_show_progress_prints_library_records_on_stdout_once(capsys):
    library = logging.getLogger("emotion_lib.experiments.ablations")
    library.info("before: not shown")
    assert "before" not in capsys.readouterr().out
    show_progress()
    try:
        show_progress()  # a second call adds no second handler
        library.info("loss_focal seed 1/3 (1 of 39): training")
        logging.getLogger("elsewhere").warning("another library's record")
    finally:
        hide_progress()
    out = capsys.readouterr().out
    assert out.count("loss_focal seed 1/3 (1 of 39): training") == 1, out
    assert "another library" not in out
    library.info("after: not shown")
    assert "after" not in capsys.readouterr().out


def test_show_progress_level_filters_records(capsys):
    show_progress(logging.WARNING)
    try:
        logging.getLogger("emotion_lib.training.trainer").info("epoch 1/2")
        logging.getLogger("emotion_lib.experiments.common").warning("3 clips failed extraction")
    finally:
        hide_progress()
    out = capsys.readouterr().out
    assert "epoch 1/2" not in out and "3 clips failed extraction" in out
