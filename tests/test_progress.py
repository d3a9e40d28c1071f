"""Progress bars: headless, the record keeps only the finished bar."""

from __future__ import annotations

from tkgs_lib.display.progress import progress_bar


def test_headless_the_record_keeps_one_line_the_finished_bar(capsys):
    with progress_bar(total=4, desc="outer", unit="step") as outer:
        for _ in range(4):
            for _ in progress_bar(range(1000), desc="inner"):  # nested, as an upload inside a plan step
                pass
            outer.update(1)
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\r" not in printed
    lines = printed.splitlines()
    assert len(lines) == 5 and lines[-1].startswith("outer: 100%") and "4/4" in lines[-1]
    assert all("100%" in line for line in lines)


def test_a_failed_run_records_how_far_it_got(capsys):
    try:
        with progress_bar(total=10, desc="upload") as bar:
            bar.update(3)
            raise OSError("connection reset")
    except OSError:
        pass
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("upload:  30%") and "3/10" in line
