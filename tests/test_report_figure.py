"""The report's bar chart: how many runs each bar holds, error bars only where there is a spread, a title that fits."""

from __future__ import annotations

import pytest

from model_zoo.report import plot, summarise


def run(model: str, variant: str, seed: int, accuracy: float) -> dict:
    return {"model": model, "variant": variant, "protocol": "paper", "source": "crema-d", "seed": 0,
            "training_seed": seed, "human": {"test": {"accuracy": 0.6}},
            "splits": {"test": {"samples": 100, "accuracy": accuracy, "uar": accuracy, "macro_f1": accuracy}}}


def errorbars(ax) -> dict[float, float]:
    """{bar position: length of its error bar}, from the error bar line collections the axes holds."""
    from matplotlib.container import ErrorbarContainer

    bars = {}
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for collection in container.lines[2]:
                for segment in collection.get_segments():
                    (x0, y0), (_, y1) = segment
                    bars[float(x0)] = abs(y1 - y0)
    return bars


def test_single_runs_get_no_error_bar_and_every_bar_says_how_many_runs(tmp_path):
    rows = summarise([run("resnet18", "2d-audio", 0, 0.5), run("resnet18", "2d-audio", 1, 0.7),
                      run("vit", "2d-multimodal", 0, 0.66)])
    assert [(r["model"], r["runs"]) for r in rows] == [("resnet18", 2), ("vit", 1)]
    fig = plot(rows, tmp_path / "accuracy.png")
    ax = fig.axes[0]
    assert errorbars(ax) == {0.0: pytest.approx(2 * rows[0]["accuracy"]["std"])}  # vit's single run: none
    assert [t.get_text().splitlines()[-1] for t in ax.get_xticklabels()] == ["n=2", "n=1"]
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("models", [["vgg16"], ["resnet18", "vit", "i3d"], [f"vit_replicated_spectrogram_{i}" for i in range(6)]])
def test_the_title_and_labels_fit_inside_the_figure_without_overlapping(tmp_path, models):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plot(summarise([run(m, "3d-multimodal", 0, 0.5) for m in models]), tmp_path / "accuracy.png")
    renderer = FigureCanvasAgg(fig).get_renderer()  # plot closed the figure; its layout is the saved one
    ax = fig.axes[0]
    for text in [ax.title, *ax.get_xticklabels(), ax.yaxis.label]:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width and 0 <= box.y0 and box.y1 <= fig.bbox.height, text.get_text()
    ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    assert all(left.x1 < right.x0 for left, right in zip(ticks, ticks[1:]))
    assert not errorbars(ax)
