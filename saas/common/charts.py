"""Server-side SVG charts (pygal): the house style the dashboard and the console share.

Charts render on the server so they read without JavaScript and load nothing from a CDN
(``js=[]``: pygal's optional tooltip script is not used).
"""

from __future__ import annotations

from pygal.style import Style

_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#e2e8f0",
    opacity=".85",
    opacity_hover="1",
    colors=("#4f46e5", "#0d9488", "#d97706", "#db2777", "#2563eb", "#65a30d"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    title_font_size=15,
    value_font_size=13,
)


def chart_config(**kw) -> dict:
    """pygal chart options in the house style; ``kw`` overrides any of them."""
    return {
        "style": _STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "show_y_guides": True,
        "show_x_guides": False,
        "margin": 8,
        "legend_at_bottom": True,
        "truncate_label": -1,
        "max_scale": 6,
        **kw,
    }
