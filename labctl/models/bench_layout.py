"""An optical layout from a bench's devices: the numbers the optics need, read from an open bench
(or one opened for the purpose), laid out by :meth:`labctl.optics.layout.OpticalLayout.tiled`."""

from __future__ import annotations

from drivers.bench import Bench, BenchSpec
from labctl.optics.layout import OpticalLayout


def layout_numbers(bench: Bench) -> dict:
    """Wavelength, focal lengths and the three devices' grids (and the Fourier SLM's bit depth).

    Read from the devices' descriptions, which a closed device still answers."""
    optics, fourier, inp, cam = bench.spec.optics, bench.fourier_slm, bench.input_slm, bench.camera
    return dict(
        wavelength_m=optics.wavelength_m, f1_m=optics.f1_m, f2_m=optics.f2_m,
        fourier_rows=fourier.grid.rows, fourier_cols=fourier.grid.cols, fourier_pitch_m=fourier.grid.pitch_m,
        fourier_bit_depth=fourier.bit_depth,
        input_rows=inp.grid.rows, input_cols=inp.grid.cols, input_pitch_m=inp.grid.pitch_m,
        camera_rows=cam.grid.rows, camera_cols=cam.grid.cols, camera_pitch_m=cam.grid.pitch_m,
    )


def layout_on(bench: Bench, image_size: int, channels: int, margin_px: int = 4, image_scale: int | None = None) -> OpticalLayout:
    """``channels`` tiles for ``image_size``-px images on an open ``bench`` (no second open)."""
    return OpticalLayout.tiled(layout_numbers(bench), image_size, channels, margin_px, image_scale, bench=bench.spec.source)


def layout_for_bench(spec: BenchSpec, image_size: int, channels: int, margin_px: int = 4, image_scale: int | None = None) -> OpticalLayout:
    """The same, opening the bench of ``spec`` just long enough to read its devices' geometry."""
    with spec.open() as bench:
        return layout_on(bench, image_size, channels, margin_px, image_scale)
