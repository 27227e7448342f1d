"""Where things sit on the bench for the optics-aware student: the 4f geometry, the image's place
on the input modulator, and the camera tiles that hold the output channels.

The numbers come from a bench (by default the embedded simulated one, ``BenchSpec.default()``), and
the layout is stored in the student's checkpoint so that its phase mask can be sent to that bench
and its tiles cropped from camera frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from drivers.bench import BenchSpec
from drivers.errors import LabctlError
from labctl.optics.geometry import CameraPose, FourFGeometry, input_to_camera_affine


class LayoutError(LabctlError, ValueError):
    """The requested image placement or tile layout does not fit the bench."""


@dataclass(frozen=True)
class OpticalLayout:
    wavelength_m: float
    f1_m: float
    f2_m: float
    fourier_rows: int
    fourier_cols: int
    fourier_pitch_m: float
    fourier_bit_depth: int
    input_rows: int
    input_cols: int
    input_pitch_m: float
    camera_rows: int
    camera_cols: int
    camera_pitch_m: float
    image_size: int  # image pixels per side
    image_scale: int  # input-modulator pixels per image pixel (nearest upsampling)
    image_row: int  # top-left modulator pixel of the image
    image_col: int
    tile_size: int  # camera pixels per tile side
    tiles: tuple[tuple[int, int], ...]  # top-left camera pixel (row, col) of each channel's tile
    bench: str = ""  # where the numbers came from

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiles", tuple(tuple(int(v) for v in t) for t in self.tiles))
        side = self.image_size * self.image_scale
        if self.image_row < 0 or self.image_col < 0 or self.image_row + side > self.input_rows or self.image_col + side > self.input_cols:
            raise LayoutError(
                f"a {self.image_size}-px image at {self.image_scale}x ({side} modulator px) at row {self.image_row}, "
                f"col {self.image_col} does not fit the {self.input_rows}x{self.input_cols} input modulator"
            )
        for r, c in self.tiles:
            if r < 0 or c < 0 or r + self.tile_size > self.camera_rows or c + self.tile_size > self.camera_cols:
                raise LayoutError(f"tile at camera ({r}, {c}) of {self.tile_size} px leaves the {self.camera_rows}x{self.camera_cols} camera")

    @property
    def geometry(self) -> FourFGeometry:
        return FourFGeometry(self.wavelength_m, self.f1_m, self.f2_m, self.fourier_rows, self.fourier_cols, self.fourier_pitch_m)

    @property
    def footprint_px(self) -> float:
        """Side of the image's footprint on the camera, in camera pixels."""
        return self.image_size * self.image_scale * self.input_pitch_m * self.geometry.magnification / self.camera_pitch_m

    def image_centre_on_camera(self) -> tuple[float, float]:
        """(row, col) camera-pixel position of the image centre, for an ideally aligned camera."""
        side = self.image_size * self.image_scale
        affine = input_to_camera_affine(
            self.geometry, self.input_rows, self.input_cols, self.input_pitch_m,
            self.camera_rows, self.camera_cols, self.camera_pitch_m, CameraPose(),
        )
        col, row = affine @ np.array([self.image_col + (side - 1) / 2, self.image_row + (side - 1) / 2, 1.0])
        return float(row), float(col)

    def tile_shifts_m(self) -> list[tuple[float, float]]:
        """Output-plane shift (y, x) in metres that centres the image on each tile."""
        r0, c0 = self.image_centre_on_camera()
        half = (self.tile_size - 1) / 2
        return [((r + half - r0) * self.camera_pitch_m, (c + half - c0) * self.camera_pitch_m) for r, c in self.tiles]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tiles"] = [list(t) for t in self.tiles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> OpticalLayout:
        return cls(**{**d, "tiles": tuple(tuple(t) for t in d["tiles"])})

    @classmethod
    def for_bench(cls, spec: BenchSpec, image_size: int, channels: int, margin_px: int = 4, image_scale: int | None = None) -> OpticalLayout:
        """Read the device geometry from ``spec`` (opening its devices) and lay out ``channels`` tiles."""
        with spec.open() as bench:
            fourier, inp, cam = bench.fourier_slm, bench.input_slm, bench.camera
            numbers = dict(
                wavelength_m=spec.optics.wavelength_m, f1_m=spec.optics.f1_m, f2_m=spec.optics.f2_m,
                fourier_rows=fourier.grid.rows, fourier_cols=fourier.grid.cols, fourier_pitch_m=fourier.grid.pitch_m,
                fourier_bit_depth=fourier.bit_depth,
                input_rows=inp.grid.rows, input_cols=inp.grid.cols, input_pitch_m=inp.grid.pitch_m,
                camera_rows=cam.grid.rows, camera_cols=cam.grid.cols, camera_pitch_m=cam.grid.pitch_m,
            )
        return cls.tiled(numbers, image_size, channels, margin_px, image_scale, bench=spec.source)

    @classmethod
    def tiled(
        cls, numbers: dict, image_size: int, channels: int, margin_px: int = 4, image_scale: int | None = None, bench: str = ""
    ) -> OpticalLayout:
        """A grid of ``channels`` equal tiles over the camera and the image centred on the modulator,
        as large (integer ``image_scale``) as lets its footprint plus ``margin_px`` fit a tile."""
        if channels < 1:
            raise LayoutError(f"need at least one channel; got {channels}")
        n_cols = math.ceil(math.sqrt(channels))
        n_rows = math.ceil(channels / n_cols)
        pitch = min(numbers["camera_rows"] // n_rows, numbers["camera_cols"] // n_cols)
        mag = numbers["f2_m"] / numbers["f1_m"]
        px_per_image_px = numbers["input_pitch_m"] * mag / numbers["camera_pitch_m"]
        if image_scale is None:
            fit_camera = (pitch - 2 * margin_px) / (image_size * px_per_image_px)
            fit_modulator = min(numbers["input_rows"], numbers["input_cols"]) / image_size
            image_scale = int(min(fit_camera, fit_modulator))
            if image_scale < 1:
                raise LayoutError(
                    f"{channels} tiles of {pitch} camera px cannot hold a {image_size}-px image "
                    f"({image_size * px_per_image_px:.0f} camera px at 1x) plus {margin_px} px margins; use fewer channels or smaller images"
                )
        tile = min(pitch, int(math.ceil(image_size * image_scale * px_per_image_px)) + 2 * margin_px)
        side = image_size * image_scale
        top = (numbers["camera_rows"] - n_rows * pitch) // 2 + (pitch - tile) // 2
        left = (numbers["camera_cols"] - n_cols * pitch) // 2 + (pitch - tile) // 2
        tiles = tuple((top + (k // n_cols) * pitch, left + (k % n_cols) * pitch) for k in range(channels))
        return cls(
            **numbers, image_size=image_size, image_scale=image_scale,
            image_row=(numbers["input_rows"] - side) // 2, image_col=(numbers["input_cols"] - side) // 2,
            tile_size=tile, tiles=tiles, bench=bench,
        )
