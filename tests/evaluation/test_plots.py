"""Front plots and markdown reports: real files, readable labels, atomic replacement."""

from __future__ import annotations

import logging

import matplotlib.image
import matplotlib.text
import pytest
from matplotlib.figure import Figure

from uniarm.errors import UniarmError
from uniarm.evaluation.metrics import summarise_sweep
from uniarm.evaluation.plots import front_figure, plot_fronts
from uniarm.evaluation.report import render_report, write_report
from uniarm.preference import task_grid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORACLE = "distilled MiniLM oracle"
SAFETY = ("helpful", "harmless")
ASSISTANT = ("helpful", "harmless", "humor")


def linear_front(k: int, shift: float) -> list:
    """A made-up sweep whose score in each objective grows with that objective's weight."""
    return [(p, [2 * w + shift for w in p]) for p in task_grid(k)]


def fronts(k: int) -> dict:
    base = [None, [0.5] * k]
    return {"uniarm": linear_front(k, 0.3), "parm": linear_front(k, 0.0), "base": [base]}


def read_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return matplotlib.image.imread(path)  # decodes the whole image, so a torn file fails


def no_temporaries(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- plots ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, objectives", [(2, SAFETY), (3, ASSISTANT)])
def test_plot_writes_a_png(tmp_path, k, objectives):
    path = tmp_path / "plots" / f"front{k}.png"
    out = plot_fronts(fronts(k), objectives, path, "sweep", ORACLE, reference=[-0.5] * k)

    assert out == path
    image = read_png(path)
    assert image.shape[0] > 400 and image.shape[1] > 400
    assert no_temporaries(path.parent)


def figure_texts(fig) -> list[str]:
    """Every piece of text on the figure: title, axis labels, annotations, legend entries."""
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def test_2d_labels_name_objective_oracle_and_preferences():
    fig = front_figure(fronts(2), SAFETY, "safety", ORACLE)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == SAFETY
    assert fig.get_suptitle() == "safety\noracle: distilled MiniLM oracle"
    labels = {t.get_text() for t in ax.texts}
    assert {"0/1", "0.3/0.7", "1/0"} <= labels
    assert set(ax.get_legend_handles_labels()[1]) == {"uniarm", "parm", "base"}


def test_an_oracle_name_with_parentheses_reads_cleanly():
    name = "distilled-minilm (ridge on beaver-7b scores)"
    for k, objectives in ((2, SAFETY), (3, ASSISTANT)):
        fig = front_figure(fronts(k), objectives, "sweep", name)
        texts = figure_texts(fig)
        assert sum(name in t for t in texts) == 1  # named once, in the title
        assert not [t for t in texts if "((" in t or "))" in t]


def test_3d_has_three_projections_and_a_3d_view():
    fig = front_figure(fronts(3), ASSISTANT, "assistant", ORACLE)
    flat = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes[:3]]
    assert flat == [("helpful", "harmless"), ("helpful", "humor"), ("harmless", "humor")]
    assert fig.axes[3].name == "3d"
    assert fig.axes[3].get_zlabel() == "humor"
    assert "oracle: distilled MiniLM oracle" in fig.get_suptitle()


def test_one_oracle_name_per_objective():
    fig = front_figure(fronts(2), SAFETY, "safety", ["beaver reward", "beaver cost, negated"])
    assert fig.axes[0].get_xlabel() == "helpful — oracle: beaver reward"
    assert fig.axes[0].get_ylabel() == "harmless — oracle: beaver cost, negated"
    assert fig.get_suptitle() == "safety"
    with pytest.raises(UniarmError, match="oracle names"):
        front_figure(fronts(2), SAFETY, "safety", ["only one"])


def test_coinciding_points_get_one_label():
    grid = task_grid(2)  # 1/0, 0.9/0.1, ..., 0/1
    same = {"same": [(p, [1.0, 1.0]) for p in grid]}
    (ax,) = front_figure(same, SAFETY, "t", ORACLE).axes
    assert [t.get_text() for t in ax.texts] == ["0/1 … 1/0"]

    # 0/1 .. 0.4/0.6 land on one spot; the others spread out along a line
    part = {"m": [(p, [1.0, 1.0] if p[0] < 0.45 else [10 * p[0], -10 * p[0]]) for p in grid]}
    (ax,) = front_figure(part, SAFETY, "t", ORACLE).axes
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(["0/1 … 0.4/0.6", "0.5/0.5", "0.6/0.4", "0.7/0.3", "0.8/0.2",
                            "0.9/0.1", "1/0"])  # fmt: skip

    # the two ends coincide, with points elsewhere between them: counted, not a range
    ends = {"m": [(p, [0.0, 0.0] if max(p) == 1.0 else [p[0], 1 + p[0]]) for p in grid]}
    (ax,) = front_figure(ends, SAFETY, "t", ORACLE).axes
    assert "2 preferences" in [t.get_text() for t in ax.texts]
    assert len(ax.texts) == len(grid) - 1


def test_coinciding_points_of_three_objectives_name_their_corners():
    same = {"m": [(p, [1.0, 2.0, 3.0]) for p in task_grid(3)]}
    fig = front_figure(same, ASSISTANT, "t", ORACLE)
    for ax in fig.axes[:3]:
        assert [t.get_text() for t in ax.texts] == ["36 preferences with 0/0/1, 0/1/0, 1/0/0"]


def test_rerun_replaces_the_plot_and_says_so(tmp_path, caplog):
    path = tmp_path / "front.png"
    plot_fronts(fronts(2), SAFETY, path, "first", ORACLE)
    first = path.read_bytes()

    with caplog.at_level(logging.INFO, logger="uniarm.evaluation.plots"):
        plot_fronts({"uniarm": linear_front(2, 1.0)}, SAFETY, path, "second", ORACLE)
    assert path.read_bytes() != first
    read_png(path)
    assert "replacing existing plot" in caplog.text
    assert no_temporaries(tmp_path)


def test_failed_save_keeps_the_old_plot(tmp_path, monkeypatch):
    path = tmp_path / "front.png"
    plot_fronts(fronts(2), SAFETY, path, "first", ORACLE)
    first = path.read_bytes()

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(PNG_SIGNATURE + b"torn")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_fronts(fronts(2), SAFETY, path, "second", ORACLE)
    assert path.read_bytes() == first
    assert no_temporaries(tmp_path)


GOOD = fronts(2)


@pytest.mark.parametrize(
    "front, objectives, name, reference, match",
    [
        (GOOD, SAFETY, "front.pdf", None, r"\.png"),
        (GOOD, ("a", "b", "c", "d"), "front.png", None, "cannot plot 4"),
        ({"m": [((0.5, 0.5), [1.0])]}, SAFETY, "front.png", None, "2 finite numbers"),
        ({"m": [((0.5, 0.5), [1.0, float("nan")])]}, SAFETY, "front.png", None, "finite"),
        ({"m": [((0.5, 0.2, 0.3), [1.0, 1.0])]}, SAFETY, "front.png", None, "wrong size"),
        ({"m": []}, SAFETY, "front.png", None, "no points"),
        ({}, SAFETY, "front.png", None, "no fronts"),
        (GOOD, SAFETY, "front.png", [0.0], "reference point"),
    ],
)
def test_bad_plot_input_writes_nothing(tmp_path, front, objectives, name, reference, match):
    with pytest.raises(UniarmError, match=match):
        plot_fronts(front, objectives, tmp_path / name, "t", ORACLE, reference=reference)
    assert not list(tmp_path.iterdir())


# -- reports -------------------------------------------------------------------------------------


def results():
    uniarm = {(1.0, 0.0): (2.0, -1.0), (0.5, 0.5): (1.0, 3.0), (0.0, 1.0): (4.0, 0.5)}
    parm = {(1.0, 0.0): (1.0, -1.5), (0.0, 1.0): (3.0, 0.0)}
    reference = (0.0, -2.0)
    return [summarise_sweep("uniarm", uniarm, reference), summarise_sweep("pa|rm", parm, reference)]


def test_report_tables():
    text = render_report(results(), SAFETY, ORACLE, title="Safety sweep")
    lines = text.splitlines()

    assert lines[0] == "# Safety sweep"
    assert "Oracle: distilled MiniLM oracle." in text
    # uniarm: HV 12.5 and MIP 1.5 by hand (see test_metrics); parm: reference (0, -2), points
    # (1, -1.5) and (3, 0): strip [0, 1] height 2 -> 2, strip [1, 3] height 2 -> 4; HV 6.
    # MIP: <(1, 0), (1, -1.5)> = 1, <(0, 1), (3, 0)> = 0; mean 0.5.
    assert "| uniarm | 12.500 | 1.500 | (0.000, -2.000) |" in lines
    assert "| pa\\|rm | 6.000 | 0.500 | (0.000, -2.000) |" in lines
    assert "| preference | uniarm | pa\\|rm |" in lines
    assert "| 1/0 | 2.000, -1.000 | 1.000, -1.500 |" in lines
    assert "| 0.5/0.5 | 1.000, 3.000 | – |" in lines


def test_report_is_written_atomically_and_replaced_with_a_log_line(tmp_path, caplog):
    path = tmp_path / "out" / "report.md"
    write_report(path, results()[:1], SAFETY, ORACLE)
    assert path.read_text().startswith("# Preference sweep")

    with caplog.at_level(logging.INFO, logger="uniarm.evaluation.report"):
        write_report(path, results(), SAFETY, ORACLE)
    assert "pa\\|rm" in path.read_text()
    assert "replacing existing report" in caplog.text
    assert no_temporaries(path.parent)


def test_report_refuses_mixed_references_or_tasks():
    uniarm, parm = results()
    sweep = dict(zip(uniarm.preferences, uniarm.scores, strict=True))
    other = summarise_sweep("other", sweep, reference=(-1.0, -2.0))
    with pytest.raises(UniarmError, match="different reference points"):
        render_report([uniarm, other], SAFETY, ORACLE)
    with pytest.raises(UniarmError, match="objectives"):
        render_report([uniarm, parm], ASSISTANT, ORACLE)
    with pytest.raises(UniarmError, match="no results"):
        render_report([], SAFETY, ORACLE)
