"""The animated scene the demo renders: a flowing colour field, a bouncing ball, and the
frame number and time drawn in a small bitmap font. Pure NumPy."""

from __future__ import annotations

import numpy as np

# 3x5 glyphs, one string of 15 pixels per character, row by row.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "s": "000011110001110",
    " ": "000000000000000", "x": "000101010101000", "f": "011100110100100", "r": "000110101100100",
    "a": "000011101101011", "m": "000111111101101", "e": "000111111100011",
}
_FONT = {c: np.array([int(b) for b in bits], dtype=bool).reshape(5, 3) for c, bits in _GLYPHS.items()}


class Scene:
    """One viewer's scene. Steered by `speed`, `color` (the ball's RGB) and `paused`.

    `render` draws into a fresh array and then publishes it as `canvas`, so a frame
    worker reading `canvas` while the next picture is drawn (in another thread) always
    gets a whole picture.
    """

    def __init__(self, width: int = 640, height: int = 360) -> None:
        self.width, self.height = width, height
        self.canvas = np.zeros((height, width, 3), np.uint8)
        self.speed = 1.0
        self.color = (255, 200, 40)
        self.paused = False
        self.frame = 0
        self.time = 0.0
        ys, xs = np.mgrid[0:height, 0:width]
        self._x = xs.astype(np.float32) / width
        self._y = ys.astype(np.float32) / height

    def render(self, dt: float) -> None:
        """Advance by `dt` seconds (unless paused) and draw the next picture."""
        if not self.paused:
            self.time += dt * self.speed
        self.frame += 1
        t = self.time
        field = np.sin(6 * self._x + t) + np.sin(5 * self._y - 1.3 * t) + np.sin(4 * (self._x + self._y) + 0.7 * t)
        field = (field + 3) / 6
        canvas = np.empty_like(self.canvas)
        canvas[:, :, 0] = (60 + 120 * field).astype(np.uint8)
        canvas[:, :, 1] = (40 + 80 * (1 - field)).astype(np.uint8)
        canvas[:, :, 2] = (110 + 140 * field * field).astype(np.uint8)
        radius = max(4, self.height // 10)
        cx = int((0.5 + 0.4 * np.sin(1.1 * t)) * self.width)
        cy = int((0.5 + 0.35 * np.cos(1.7 * t)) * self.height)
        y0, y1 = max(0, cy - radius), min(self.height, cy + radius)
        x0, x1 = max(0, cx - radius), min(self.width, cx + radius)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius
        canvas[y0:y1, x0:x1][disc] = self.color
        self.draw_text(f"frame {self.frame}  {self.time:.1f}s", 8, 8, scale=max(2, self.height // 90), canvas=canvas)
        self.canvas = canvas

    def draw_text(self, text: str, x: int, y: int, scale: int = 3, canvas: np.ndarray | None = None) -> None:
        """Draw `text` in white with a dark box behind it (on `canvas`, by default the current one)."""
        canvas = self.canvas if canvas is None else canvas
        width = len(text) * 4 * scale
        canvas[y - scale : y + 6 * scale, x - scale : x + width] //= 3
        for i, char in enumerate(text):
            glyph = _FONT.get(char, _FONT[" "])
            mask = np.kron(glyph, np.ones((scale, scale), dtype=bool))
            left = x + i * 4 * scale
            region = canvas[y : y + mask.shape[0], left : left + mask.shape[1]]
            region[mask[: region.shape[0], : region.shape[1]]] = 255
