"""One visual style for every report figure: fonts, a colour-blind-safe palette, sizes, export.

Figures are sized for the printed page (A4/Letter text width about 6.7 in) so that 9-10 pt
text in a figure reads at the same size as the report's body text, in the PDF and in the HTML.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")  # headless: reports are rendered inside Snakemake jobs

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#999999",
}
CYCLE = [PALETTE[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow")]

# One colour per estimation method and per true status class, everywhere in the report.
METHOD_COLOURS = {
    "model": PALETTE["blue"],
    "record_rule": PALETTE["orange"],
    "census_style": PALETTE["green"],
    "published": PALETTE["purple"],
    "acs_direct": PALETTE["vermillion"],
}
METHOD_LABELS = {
    "model": "Model (exact fit)",
    "record_rule": "Record rule",
    "census_style": "Census-style",
    "published": "Published (privacy fit)",
    "acs_direct": "ACS direct (today's practice)",
}
STATUS_COLOURS = {
    "native_citizen": PALETTE["blue"],
    "naturalized": PALETTE["sky"],
    "lpr": PALETTE["orange"],
    "temporary": PALETTE["purple"],
    "unauthorized": PALETTE["vermillion"],
}
# Sequential maps that stay readable in greyscale and for colour-blind readers.
SEQUENTIAL_CMAP = "viridis"
UNCERTAINTY_CMAP = "cividis"

TEXT_WIDTH_IN = 6.7  # printable width of A4 and Letter with the report's 2 cm margins
FULL = (TEXT_WIDTH_IN, 3.2)
TALL = (TEXT_WIDTH_IN, 4.4)
HALF = (TEXT_WIDTH_IN * 0.62, 2.9)

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.04,
    "svg.hashsalt": "cvap-report",  # stable element ids: same figure -> same bytes
    "svg.fonttype": "path",
}


@contextmanager
def report_style() -> Iterator[None]:
    """Apply the report's rcParams for the duration of a ``with`` block."""
    with plt.rc_context(RC):
        yield


def new_figure(size: tuple[float, float] = FULL, **subplots_kwargs) -> tuple[Figure, object]:
    """A figure in the report style (``constrained`` layout) and its axes."""
    with report_style():
        fig, axes = plt.subplots(figsize=size, layout="constrained", **subplots_kwargs)
    return fig, axes


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 200) -> bytes:
    """Serialise ``fig`` as PNG (at ``dpi``) or SVG without timestamps, then close it."""
    buffer = io.BytesIO()
    with report_style():
        if fmt == "svg":
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        else:
            fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def data_uri(payload: bytes, fmt: str) -> str:
    """A ``data:`` URI embedding ``payload`` so the HTML needs no other file."""
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
