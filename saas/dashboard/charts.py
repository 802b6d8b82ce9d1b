"""Server-side SVG charts (pygal): class balance, training curves, usage per day.

Charts are rendered on the server so they read without JavaScript, swap in place when htmx
polls a job page, and load nothing from a CDN (``js=[]``: pygal's optional tooltip script is
not used). Every chart is also given as a table in the page for screen readers.
"""

from __future__ import annotations

import pygal

from saas.common.charts import chart_config as _config


def class_balance(classes: dict[str, int], *, title: str = "Examples per class") -> str:
    """A horizontal bar chart of ``{label: count}`` (largest first, at most 40 bars); SVG text."""
    items = sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))[:40]
    chart = pygal.HorizontalBar(
        **_config(
            width=460,
            height=max(180, 34 * len(items) + 70),
            show_legend=False,
            print_values=True,
            title=title,
        )
    )
    chart.x_labels = [label for label, _ in items]
    chart.add("examples", [count for _, count in items])
    return chart.render(is_unicode=True)


def training_curves(epochs: list[dict]) -> dict[str, str]:
    """Loss and accuracy per epoch from a job's ``epoch`` events' data.

    Args:
        epochs: ``[{"epoch": 1, "loss": .., "accuracy": .., "val_loss": .., "val_accuracy": ..}]``.

    Returns:
        ``{"loss": svg, "accuracy": svg}``; a key is missing when no epoch reported it.
    """
    out: dict[str, str] = {}
    labels = [str(e.get("epoch", i + 1)) for i, e in enumerate(epochs)]
    for name, title in (("loss", "Loss"), ("accuracy", "Accuracy")):
        train = [e.get(name) for e in epochs]
        val = [e.get(f"val_{name}") for e in epochs]
        if not any(v is not None for v in train + val):
            continue
        chart = pygal.Line(
            **_config(
                width=440,
                height=280,
                title=title,
                x_title="epoch",
                dots_size=3,
                range=(0, 1) if name == "accuracy" else None,
                show_minor_x_labels=len(labels) <= 20,
                x_labels_major_every=max(1, len(labels) // 10),
            )
        )
        chart.x_labels = labels
        chart.add("training", train)
        chart.add("validation", val)
        out[name] = chart.render(is_unicode=True)
    return out


def usage_per_day(days: list[str], series: dict[str, list[float]], *, title: str) -> str:
    """One bar chart of a meter's quantity per day (UTC); ``series`` is ``{name: values}``
    aligned with ``days`` (ISO dates)."""
    chart = pygal.StackedBar(
        **_config(
            width=460,
            height=260,
            title=title,
            show_legend=len(series) > 1,
            x_label_rotation=0,
            show_minor_x_labels=False,
            x_labels_major_every=max(1, len(days) // 5),
        )
    )
    chart.x_labels = [d[5:] for d in days]  # MM-DD
    for name, values in series.items():
        chart.add(name, values)
    return chart.render(is_unicode=True)
