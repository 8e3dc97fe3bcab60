"""Box geometry of the local provider (pure): map an engine's quadrilaterals to Qwen-OCR's ``location`` and
``rotate_rect``, and put lines in reading order.

**The mapping.** The detector gives each text line as four corners in the line's own reading frame: the start of
its top edge, the end of its top edge, the end of its bottom edge, the start of its bottom edge. These become

* ``location`` = those four corners rounded to ints, ``[x1, y1, x2, y2, x3, y3, x4, y4]``: clockwise from the
  line's top-left (for an upright line, exactly the image's top-left, top-right, bottom-right, bottom-left);
* ``rotate_rect`` = ``[cx, cy, width, height, angle]`` in the convention the service uses (that of OpenCV 4.5 to
  4.x ``minAreaRect``), with ``angle`` in ``(0, 90]`` degrees. Let ``L`` be the line's length, ``S`` its height
  (the short side) and ``t`` the slope of its baseline in degrees, positive when the line runs down to the right
  (image y grows downwards), folded into ``(-90, 90]``:

  - ``t <= 0`` (level, or rising to the right): ``[cx, cy, S, L, 90 + t]``. An upright line is
    ``[cx, cy, line height, line length, 90]``, as the service gives for ``location
    [1704,390,4314,390,4314,675,1704,675]``: ``[3009, 532, 285, 2610, 90]``.
  - ``t > 0`` (running down to the right): ``[cx, cy, L, S, t]``, as the service's ``[477, 959, 886, 197, 15]``
    for a line tilted 15 degrees.

  Values are rounded to whole numbers as the service does. A slope within 1 degree, or one that lifts the line's
  end by at most 3 pixels, counts as level (angle 90): the detector's boxes wobble by that much on straight lines.

**Reading order.** :func:`reading_order` cuts the page recursively at white gaps (a recursive XY-cut): a vertical
gutter splits columns, read left column first, when the lines on both sides are text-like (long lines, not a column
of short labels or prices, which are read row by row); otherwise the widest horizontal gap splits the region into a
top and a bottom part. A region with no gap left is read top-to-bottom, and left-to-right within a band of lines
that share a height.

Example::

    from qwen_ocr.local.geometry import rotate_rect_from_points
    rotate_rect_from_points([(1704, 390), (4314, 390), (4314, 675), (1704, 675)])
    # (3009.0, 532.0, 285.0, 2610.0, 90.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median

__all__ = [
    "Point",
    "Quad",
    "location_from_points",
    "reading_order",
    "rotate_points_180",
    "rotate_rect_from_points",
    "scale_points",
]

Point = tuple[float, float]
Quad = Sequence[Point]
"""Four corners: top-left, top-right, bottom-right, bottom-left in the line's reading frame."""

_LEVEL = 1.0
"""A baseline sloping by at most this many degrees counts as level (detector boxes wobble by a fraction)."""
_WOBBLE = 3.0
"""So does one whose ends differ in height by at most this many pixels (short boxes wobble by more degrees)."""
_MIN_GUTTER = 0.2
"""A vertical gap narrower than this many line heights never splits columns."""
_TEXT_COLUMN = 5.0
"""Both sides of a gutter must have a median line length of at least this many line heights to be columns."""


def location_from_points(points: Quad) -> tuple[int, int, int, int, int, int, int, int]:
    """The service's 8-int ``location`` from four corners (reading frame, clockwise from top-left).

    >>> location_from_points([(10.4, 20.6), (110.5, 20), (110, 40), (10, 40)])
    (10, 21, 110, 20, 110, 40, 10, 40)
    """
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = points
    return (
        round(x1),
        round(y1),
        round(x2),
        round(y2),
        round(x3),
        round(y3),
        round(x4),
        round(y4),
    )


def rotate_rect_from_points(points: Quad) -> tuple[float, float, float, float, float]:
    """The service's ``rotate_rect`` ``[cx, cy, width, height, angle]`` from four corners (see the module doc).

    >>> rotate_rect_from_points([(1704, 390), (4314, 390), (4314, 675), (1704, 675)])
    (3009.0, 532.0, 285.0, 2610.0, 90.0)
    >>> rotate_rect_from_points([(0, 0), (100, 100), (90, 110), (-10, 10)])  # running down at 45 degrees
    (45.0, 55.0, 141.0, 14.0, 45.0)
    """
    p = [(float(x), float(y)) for x, y in points]
    if len(p) != 4:
        raise ValueError(f"expected 4 corners, got {len(p)}")
    # The line's direction: the mean of its two long opposite edges (top and bottom for a line of text). The
    # rectangle does not depend on which corner comes first, so the service's own locations map back exactly.
    dx = (p[1][0] - p[0][0]) + (p[2][0] - p[3][0])
    dy = (p[1][1] - p[0][1]) + (p[2][1] - p[3][1])
    ex = (p[3][0] - p[0][0]) + (p[2][0] - p[1][0])
    ey = (p[3][1] - p[0][1]) + (p[2][1] - p[1][1])
    if math.hypot(ex, ey) > math.hypot(dx, dy):
        dx, dy = ex, ey
    if dx == 0 and dy == 0:
        dx = 1.0
    theta = math.atan2(dy, dx)
    ux, uy = math.cos(theta), math.sin(theta)
    along = [x * ux + y * uy for x, y in p]
    across = [-x * uy + y * ux for x, y in p]
    length = max(along) - min(along)
    height = max(across) - min(across)
    # The centre of that rectangle, back in image coordinates.
    ca = (max(along) + min(along)) / 2
    cb = (max(across) + min(across)) / 2
    cx = ca * ux - cb * uy
    cy = ca * uy + cb * ux
    degrees = math.degrees(theta)
    while degrees <= -90.0:  # fold the direction into (-90, 90]: a line read upside down has the same rectangle
        degrees += 180.0
    while degrees > 90.0:
        degrees -= 180.0
    cx, cy, length, height = float(round(cx)), float(round(cy)), float(round(length)), float(round(height))
    if abs(degrees) <= _LEVEL or length * math.sin(math.radians(abs(degrees))) <= _WOBBLE:
        return (cx, cy, height, length, 90.0)
    if degrees > 0:
        return (cx, cy, length, height, float(round(degrees)))
    return (cx, cy, height, length, float(round(90 + degrees)))


def rotate_points_180(points: Quad, width: float, height: float) -> list[Point]:
    """Map corners found in an image turned by 180 degrees back to the image before turning.

    The order is kept, so the first corner is still the line's own top-left (now at its lower right on the page).

    >>> rotate_points_180([(0, 0), (10, 0), (10, 5), (0, 5)], 100, 50)
    [(100.0, 50.0), (90.0, 50.0), (90.0, 45.0), (100.0, 45.0)]
    """
    return [(float(width) - x, float(height) - y) for x, y in points]


def scale_points(points: Quad, sx: float, sy: float) -> list[Point]:
    """Multiply x by ``sx`` and y by ``sy``.

    >>> scale_points([(1, 2)], 2.0, 3.0)
    [(2.0, 6.0)]
    """
    return [(x * sx, y * sy) for x, y in points]


# --------------------------------------------------------------------------------------------------------------
# Reading order

_Box = tuple[float, float, float, float]  # left, top, right, bottom


def _bbox(points: Quad) -> _Box:
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    return (min(xs), min(ys), max(xs), max(ys))


def _gaps(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The empty stretches between a set of intervals (their union's holes)."""
    ordered = sorted(intervals)
    gaps: list[tuple[float, float]] = []
    end = ordered[0][1]
    for start, stop in ordered[1:]:
        if start > end:
            gaps.append((end, start))
        end = max(end, stop)
    return gaps


def _band_order(indices: list[int], boxes: list[_Box]) -> list[int]:
    """Top-to-bottom; lines whose vertical centres lie within half a line height form a band, read left to right."""
    by_centre = sorted(indices, key=lambda i: ((boxes[i][1] + boxes[i][3]) / 2, boxes[i][0]))
    bands: list[list[int]] = []
    band_centre = 0.0
    band_height = 0.0
    for i in by_centre:
        _, top, _, bottom = boxes[i]
        centre, height = (top + bottom) / 2, bottom - top
        if bands and abs(centre - band_centre) <= 0.5 * min(height, band_height):
            bands[-1].append(i)
            continue
        bands.append([i])
        band_centre, band_height = centre, height
    return [i for band in bands for i in sorted(band, key=lambda j: boxes[j][0])]


def _column_split(indices: list[int], boxes: list[_Box], line_height: float) -> tuple[list[int], list[int]] | None:
    """The widest vertical gutter with text-like lines on both sides, as (left, right), or ``None``."""
    gaps = _gaps([(boxes[i][0], boxes[i][2]) for i in indices])
    for start, stop in sorted(gaps, key=lambda g: g[0] - g[1]):
        if stop - start < _MIN_GUTTER * line_height:
            break
        cut = (start + stop) / 2
        left = [i for i in indices if boxes[i][2] <= cut]
        right = [i for i in indices if boxes[i][0] >= cut]
        widths_left = [boxes[i][2] - boxes[i][0] for i in left]
        widths_right = [boxes[i][2] - boxes[i][0] for i in right]
        if min(median(widths_left), median(widths_right)) >= _TEXT_COLUMN * line_height:
            return left, right
    return None


def _row_split(indices: list[int], boxes: list[_Box]) -> tuple[list[int], list[int]] | None:
    """Split at the widest horizontal gap, as (above, below), or ``None`` when the lines overlap all the way."""
    gaps = _gaps([(boxes[i][1], boxes[i][3]) for i in indices])
    if not gaps:
        return None
    start, stop = max(gaps, key=lambda g: g[1] - g[0])
    cut = (start + stop) / 2
    return [i for i in indices if boxes[i][3] <= cut], [i for i in indices if boxes[i][1] >= cut]


def reading_order(quads: Sequence[Quad]) -> list[int]:
    """The indices of ``quads`` in reading order (see the module doc): columns first, then top-to-bottom bands.

    >>> reading_order([[(0, 50), (90, 50), (90, 60), (0, 60)], [(0, 0), (90, 0), (90, 10), (0, 10)]])
    [1, 0]
    >>> left = [[(0, y), (100, y), (100, y + 10), (0, y + 10)] for y in (0, 20)]
    >>> right = [[(120, y), (220, y), (220, y + 10), (120, y + 10)] for y in (0, 20)]
    >>> reading_order(left + right)  # two columns of long lines: the left column first
    [0, 1, 2, 3]
    >>> labels = [[(0, y), (30, y), (30, y + 10), (0, y + 10)] for y in (0, 20)]
    >>> prices = [[(120, y), (140, y), (140, y + 10), (120, y + 10)] for y in (0, 20)]
    >>> reading_order(labels + prices)  # short items and prices: row by row
    [0, 2, 1, 3]
    """
    boxes = [_bbox(q) for q in quads]
    if not boxes:
        return []
    line_height = median(min(box[2] - box[0], box[3] - box[1]) for box in boxes) or 1.0
    order: list[int] = []
    stack: list[list[int]] = [list(range(len(boxes)))]
    while stack:  # depth-first, top/left part first; a stack instead of recursion: pages may have 1000 lines
        region = stack.pop()
        if len(region) <= 1:
            order.extend(region)
            continue
        split = _column_split(region, boxes, line_height) or _row_split(region, boxes)
        if split is None:
            order.extend(_band_order(region, boxes))
            continue
        first, second = split
        stack.append(second)
        stack.append(first)
    return order
