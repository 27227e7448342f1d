"""Where things sit on the bench for the optics-aware student: the 4f geometry, the image's place
on the input modulator, and the camera tiles that hold the output channels.

The numbers come from a bench's devices (:func:`labctl.models.bench_layout.layout_for_bench`), and
the layout is stored in the student's checkpoint and mask file so that its phase mask can be sent to
that bench and its tiles cropped from camera frames. Nothing here touches a device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from labctl_errors import LabctlError
from labctl.optics.geometry import CameraPose, FourFGeometry, input_to_camera_affine
from labctl.optics.quantise import uniform_levels


class LayoutError(LabctlError, ValueError):
    """The requested image placement or tile layout does not fit the bench."""


class OpticalInputError(LabctlError, ValueError):
    """Images that cannot be shown on the input modulator under a layout (channels, size, range)."""


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
    tiles: tuple[tuple[int, int], ...]  # top-left camera pixel (row, col) of each channel's tile in one frame
    bench: str = ""  # where the numbers came from
    #: output channels in all; more than the tiles of one frame when they are multiplexed: channel
    #: group g (channels g·T … g·T + T − 1, T tiles per frame) is its own Fourier mask and camera frame
    channels: int = 0  # 0: one channel per tile, one frame
    #: phases the Fourier SLM shows through its phase table (sorted, [0, 2π)); empty: the linear
    #: table's 2**fourier_bit_depth uniform levels (:mod:`labctl.optics.quantise`)
    phase_levels: tuple[float, ...] = ()
    #: guard band, in image pixels: the clear gap between the image footprints of any two tiles of a
    #: frame must be at least this wide. A kernel reaching ``h`` image pixels from its centre spills
    #: ``h`` pixels past its footprint (the 4f convolution is linear); a gap of ``h`` or more keeps
    #: that light off every other channel's tile (:func:`guard_for_kernel`). 0: no guard band.
    guard_image_px: int = 0
    #: the Fourier SLM's fringing width (SLM px) and fill factor, as its phase calibration measured them
    #: (:class:`drivers.phase_table.PhaseTable`); the twin shows masks through them. 0 and 1: an ideal panel
    fringing_sigma_px: float = 0.0
    fill_factor: float = 1.0
    #: the field a dark input-modulator pixel still sends, over a full-on one's (finite contrast), as its
    #: input-response calibration measured it (:class:`drivers.amplitude_table.AmplitudeTable`): every
    #: pixel outside the image sends it too, coherently with the image's light, taken in phase with it
    #: (an amplitude modulator's; an LC cell's dark state may carry another phase, which a measurement
    #: of intensity cannot see). 0: a perfect modulator
    input_leak: float = 0.0
    #: how the amplitude table shows ``a`` over the leak: ``leak + (1 − leak)·a`` (True: binary mirrors)
    #: or ``max(a, leak)`` (False)
    input_leak_adds: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.input_leak) and 0 <= self.input_leak < 1):
            raise LayoutError(f"the input modulator's leak must be within [0, 1) of full on; got {self.input_leak}")
        if not (math.isfinite(self.fringing_sigma_px) and self.fringing_sigma_px >= 0):
            raise LayoutError(f"the fringing width must be >= 0 SLM px; got {self.fringing_sigma_px}")
        if not (math.isfinite(self.fill_factor) and 0 < self.fill_factor <= 1):
            raise LayoutError(f"the fill factor must be within (0, 1]; got {self.fill_factor}")
        object.__setattr__(self, "tiles", tuple(tuple(int(v) for v in t) for t in self.tiles))
        levels = tuple(float(v) for v in self.phase_levels)
        object.__setattr__(self, "phase_levels", levels)
        if levels and (len(levels) < 2 or list(levels) != sorted(levels) or levels[0] < 0 or levels[-1] >= 2 * math.pi):
            raise LayoutError(f"phase_levels must be at least two sorted phases in [0, 2π); got {len(levels)} values")
        if not self.tiles:
            raise LayoutError("a layout needs at least one channel tile")
        if self.channels == 0:
            object.__setattr__(self, "channels", len(self.tiles))
        if self.channels < len(self.tiles):
            raise LayoutError(f"{self.channels} channel(s) but {len(self.tiles)} tiles per frame; a tile would stay unused")
        side = self.image_size * self.image_scale
        if self.image_row < 0 or self.image_col < 0 or self.image_row + side > self.input_rows or self.image_col + side > self.input_cols:
            raise LayoutError(
                f"a {self.image_size}-px image at {self.image_scale}x ({side} modulator px) at row {self.image_row}, "
                f"col {self.image_col} does not fit the {self.input_rows}x{self.input_cols} input modulator"
            )
        for r, c in self.tiles:
            if r < 0 or c < 0 or r + self.tile_size > self.camera_rows or c + self.tile_size > self.camera_cols:
                raise LayoutError(f"tile at camera ({r}, {c}) of {self.tile_size} px leaves the {self.camera_rows}x{self.camera_cols} camera")
        self._check_guard_band()

    def _check_guard_band(self) -> None:
        """Refuse two tiles whose image footprints are closer than the guard band (camera pixels)."""
        if self.guard_image_px < 0:
            raise LayoutError(f"the guard band must be >= 0 image px; got {self.guard_image_px}")
        if not self.guard_image_px or len(self.tiles) < 2:
            return
        need = self.guard_band_camera_px
        footprint = self.footprint_px
        tiles = np.array(self.tiles, dtype=np.float64)
        # gap between two equal footprints centred in equal tiles: the larger of the row and column distances, less a footprint
        gaps = np.abs(tiles[:, None, :] - tiles[None, :, :]).max(axis=-1) - footprint
        np.fill_diagonal(gaps, np.inf)
        i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
        if gaps[i, j] < need - 1e-9:
            raise LayoutError(
                f"tiles at camera {self.tiles[i]} and {self.tiles[j]}: their {footprint:.1f}-px image footprints are "
                f"{gaps[i, j]:.1f} camera px apart, closer than the guard band of {self.guard_image_px} image px "
                f"({need:.1f} camera px at {self.image_scale}x); the kernel's spill would reach the other channel's tile"
            )

    @property
    def camera_px_per_image_px(self) -> float:
        """Camera pixels one image pixel covers (at ``image_scale``)."""
        return self.footprint_px / self.image_size

    @property
    def guard_band_camera_px(self) -> float:
        """The guard band in camera pixels."""
        return self.guard_image_px * self.camera_px_per_image_px

    @property
    def channel_groups(self) -> int:
        """Fourier masks (and camera frames) one input costs: the channels in groups of one frame's tiles."""
        return -(-self.channels // len(self.tiles))

    def group_channels(self, group: int) -> range:
        """The output channels shown by mask ``group``."""
        per_frame = len(self.tiles)
        return range(group * per_frame, min(self.channels, (group + 1) * per_frame))

    @property
    def geometry(self) -> FourFGeometry:
        return FourFGeometry(self.wavelength_m, self.f1_m, self.f2_m, self.fourier_rows, self.fourier_cols, self.fourier_pitch_m)

    def quantisation_levels(self) -> torch.Tensor:
        """The Fourier SLM's phase levels as a tensor (see ``phase_levels``)."""
        return torch.tensor(self.phase_levels or uniform_levels(self.fourier_bit_depth), dtype=torch.float64)

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
        d["phase_levels"] = list(self.phase_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> OpticalLayout:
        return cls(**{**d, "tiles": tuple(tuple(t) for t in d["tiles"])})

    @classmethod
    def tiled(
        cls, numbers: dict, image_size: int, channels: int, margin_px: int = 4, image_scale: int | None = None, bench: str = "",
        phase_levels: tuple[float, ...] = (), guard_image_px: int = 0, packed: bool = False,
        fringing_sigma_px: float = 0.0, fill_factor: float = 1.0, input_leak: float = 0.0, input_leak_adds: bool = False,
    ) -> OpticalLayout:
        """A grid of equal tiles over the camera and the image centred on the modulator, as large
        (integer ``image_scale``) as lets its footprint plus ``margin_px`` fit a tile.

        All ``channels`` share one camera frame where their tiles fit; otherwise the channels are
        multiplexed: the most tiles per frame that still hold the image at ``image_scale`` (at least
        1x when it is not given), each group of channels shown as its own mask and frame.
        ``guard_image_px``: the guard band (see the field); the tile pitch leaves at least that many
        image pixels between neighbouring footprints, so fewer tiles fit a frame as it grows.

        ``packed``: the same number of frames and the same ``image_scale``, but the channels spread
        evenly over the frames and the tiles packed at the smallest pitch the tile and the guard band
        allow, in the camera's centre. No tile then reads the output window's rim, so a phase-only
        encoding can send the light it cannot shape there (:mod:`labctl.masks.iterative`). Only for
        kernels that the guard band holds: a free filter's light reaches every tile of a packed grid."""
        if channels < 1:
            raise LayoutError(f"need at least one channel; got {channels}")
        if guard_image_px < 0:
            raise LayoutError(f"the guard band must be >= 0 image px; got {guard_image_px}")
        mag = numbers["f2_m"] / numbers["f1_m"]
        px_per_image_px = numbers["input_pitch_m"] * mag / numbers["camera_pitch_m"]
        fit_modulator = min(numbers["input_rows"], numbers["input_cols"]) // image_size
        if fit_modulator < 1 or (image_scale is not None and image_scale > fit_modulator):
            raise LayoutError(
                f"a {image_size}-px image at {image_scale or 1}x does not fit the {numbers['input_rows']}x{numbers['input_cols']} "
                "input modulator; use smaller images"
            )
        for per_frame in range(channels, 0, -1):
            n_cols = math.ceil(math.sqrt(per_frame))
            n_rows = math.ceil(per_frame / n_cols)
            pitch = min(numbers["camera_rows"] // n_rows, numbers["camera_cols"] // n_cols)
            fit_camera = int((pitch - 2 * margin_px) / (image_size * px_per_image_px))
            if per_frame > 1 and guard_image_px:  # footprint + guard band within one pitch
                fit_camera = min(fit_camera, int(pitch / ((image_size + guard_image_px) * px_per_image_px) + 1e-9))
            scale = min(fit_camera, fit_modulator) if image_scale is None else image_scale
            if scale >= 1 and fit_camera >= scale:
                break
        else:
            need = int(math.ceil(image_size * (image_scale or 1) * px_per_image_px)) + 2 * margin_px
            raise LayoutError(  # one tile has no neighbour, so no guard band: only the margins can refuse it
                f"not even one channel fits: a {image_size}-px image at {image_scale or 1}x covers "
                f"{image_size * (image_scale or 1) * px_per_image_px:.0f} camera px, {need} px with {margin_px} px margins, "
                f"and the camera is {numbers['camera_rows']}x{numbers['camera_cols']} px; use smaller images or a larger camera"
            )
        tile = min(pitch, int(math.ceil(image_size * scale * px_per_image_px)) + 2 * margin_px)
        if packed:
            per_frame = -(-channels // -(-channels // per_frame))  # the same frames, evenly filled
            n_cols = math.ceil(math.sqrt(per_frame))
            n_rows = math.ceil(per_frame / n_cols)
            guard = guard_image_px if per_frame > 1 else 0
            pitch = max(tile, math.ceil((image_size + guard) * scale * px_per_image_px - 1e-9))
        side = image_size * scale
        top = (numbers["camera_rows"] - n_rows * pitch) // 2 + (pitch - tile) // 2
        left = (numbers["camera_cols"] - n_cols * pitch) // 2 + (pitch - tile) // 2
        tiles = tuple((top + (k // n_cols) * pitch, left + (k % n_cols) * pitch) for k in range(per_frame))
        return cls(
            **numbers, image_size=image_size, image_scale=scale,
            image_row=(numbers["input_rows"] - side) // 2, image_col=(numbers["input_cols"] - side) // 2,
            tile_size=tile, tiles=tiles, bench=bench, channels=channels, phase_levels=phase_levels,
            fringing_sigma_px=fringing_sigma_px, fill_factor=fill_factor, input_leak=input_leak, input_leak_adds=input_leak_adds,
            guard_image_px=guard_image_px if per_frame > 1 else 0,
        )


def guard_for_kernel(kernel_extent: int) -> int:
    """The guard band (image pixels) for a collapsed kernel ``kernel_extent`` pixels wide: its reach
    ``kernel_extent // 2`` past the footprint, plus one pixel for the blur of the Fourier SLM's finite
    aperture (the mask covers a little over one period of the filter's spectrum, so each kernel tap
    is imaged as a sinc about one image pixel wide)."""
    if kernel_extent < 1:
        raise LayoutError(f"a kernel is at least 1 px wide; got {kernel_extent}")
    return kernel_extent // 2 + 1


def modulator_patch(images: torch.Tensor, layout: OpticalLayout) -> torch.Tensor:
    """Images (B, 1, n, n) in [0, 1] → the input-modulator amplitudes of the image's patch
    (B, n·s, n·s): each image pixel shown on s × s modulator pixels (s = ``image_scale``). The patch
    sits at (``image_row``, ``image_col``); the rest of the modulator is dark."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise OpticalInputError(f"the input modulator shows one field: images must be (B, 1, n, n); got {tuple(images.shape)}")
    n, s = layout.image_size, layout.image_scale
    if images.shape[-1] != n or images.shape[-2] != n:
        raise OpticalInputError(f"the layout holds {n}x{n}-px images; got {images.shape[-2]}x{images.shape[-1]}")
    return images[:, 0].repeat_interleave(s, dim=1).repeat_interleave(s, dim=2)


def images_of(split, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 in [0, 1] (N, C, n, n), targets) of a data split."""
    n = len(split) if limit is None else min(limit, len(split))
    images = split.images[:n].float().numpy() / 255.0
    return images.astype(np.float32), split.targets[:n].numpy()


def modulator_amplitudes(images: np.ndarray, layout: OpticalLayout) -> np.ndarray:
    """Images (B, 1, n, n) or (B, n, n) in [0, 1] → input-modulator amplitudes (B, rows, cols)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise OpticalInputError(
                f"the input modulator shows one field; images have {images.shape[1]} channels (use grayscale data)"
            )
        images = images[:, 0]
    n = layout.image_size
    if images.shape[-2:] != (n, n):
        raise OpticalInputError(f"masks were made for {n}x{n}-px images; the data has {images.shape[-2]}x{images.shape[-1]}")
    if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
        raise OpticalInputError("image values must be finite and within [0, 1] to be shown as amplitudes")
    patch = modulator_patch(torch.from_numpy(images[:, None]), layout).numpy()
    out = np.zeros((images.shape[0], layout.input_rows, layout.input_cols), dtype=np.float32)
    out[:, layout.image_row : layout.image_row + patch.shape[1], layout.image_col : layout.image_col + patch.shape[2]] = patch
    return out
