"""Detections drawn on their image with Pillow: a box, the label and the score, one colour per
label. For people who would rather look than read (metric-predict --detect --draw)."""

from __future__ import annotations

from typing import Iterable

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]


def draw_detections(picture: Image.Image, detections: Iterable, labels: list[str],
                    marked: Iterable[str] = ()) -> Image.Image:
    """A copy of ``picture`` with each detection (``.box``, ``.label``, ``.score``) drawn; the
    colour follows the label's place in ``labels``; labels in ``marked`` get "(novel)"."""
    picture = picture.convert("RGB").copy()
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(12, picture.height // 28))  # readable when scaled down
    line = max(2, picture.height // 200)
    marked = set(marked)
    for d in detections:
        colour = COLOURS[labels.index(d.label) % len(COLOURS)] if d.label in labels else COLOURS[0]
        draw.rectangle([float(v) for v in d.box], outline=colour, width=line)
        tag = f"{d.label}{' (novel)' if d.label in marked else ''} {d.score:.2f}"
        draw.text((float(d.box[0]) + 3, float(d.box[1]) + 2), tag, fill=colour, font=font, stroke_width=2,
                  stroke_fill="black")
    return picture
