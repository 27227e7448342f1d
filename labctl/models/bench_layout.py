"""An optical layout for a bench, from its description (:mod:`drivers.description`): the numbers
the optics need, laid out by :meth:`labctl.optics.layout.OpticalLayout.tiled`, the phase levels
its Fourier SLM shows through the active phase table and what the active calibrations measured of
the panel and of the input modulator's leak. No device is opened where the bench has been
described before."""

from __future__ import annotations

from calibration.session import amplitude_table_for, describe, phase_table_for
from drivers.amplitude_table import AmplitudeTable
from drivers.bench import BenchSpec
from drivers.description import BenchDescription
from drivers.phase_table import PhaseTable
from labctl.optics.layout import OpticalLayout
from labctl.optics.quantise import table_phase_levels


def layout_for(description: BenchDescription, image_size: int, channels: int, margin_px: int = 4,
               image_scale: int | None = None, phase_levels: tuple[float, ...] = (), guard_image_px: int = 0,
               packed: bool = False, table: PhaseTable | None = None,
               amplitudes: AmplitudeTable | None = None) -> OpticalLayout:
    """``channels`` tiles for ``image_size``-px images on the bench ``description`` describes;
    ``guard_image_px``: the guard band between tiles, ``packed``: tiles at their smallest pitch
    (both :meth:`OpticalLayout.tiled`); ``table``: the Fourier SLM's active phase table, whose
    calibration measured the panel's fringing and fill factor (None: an ideal panel); ``amplitudes``:
    the input modulator's active amplitude table, whose calibration measured its dark pixels' leak
    (None: no leak)."""
    return OpticalLayout.tiled(
        description.layout_numbers(), image_size, channels, margin_px, image_scale, bench=description.source,
        phase_levels=phase_levels, guard_image_px=guard_image_px, packed=packed,
        fringing_sigma_px=table.fringing_sigma_px if table else 0.0, fill_factor=table.fill_factor if table else 1.0,
        input_leak=amplitudes.leak_amplitude if amplitudes else 0.0,
        input_leak_adds=amplitudes.leak_adds if amplitudes else False,
    )


def layout_for_bench(spec: BenchSpec, image_size: int, channels: int, margin_px: int = 4,
                     image_scale: int | None = None, guard_image_px: int = 0, packed: bool = False) -> OpticalLayout:
    """The same for the bench file ``spec``, from its saved description (opened once if none), with
    the phase levels of its active phase table (none recorded while it is the linear one)."""
    description = describe(spec)
    table = phase_table_for(spec, description)
    levels = () if table.record_id == "linear" else table_phase_levels(table.gray)
    return layout_for(description, image_size, channels, margin_px, image_scale, levels, guard_image_px, packed, table,
                      amplitude_table_for(spec, description))
