"""An optical layout for a bench, from its description (:mod:`drivers.description`): the numbers
the optics need, laid out by :meth:`labctl.optics.layout.OpticalLayout.tiled`. No device is opened
where the bench has been described before."""

from __future__ import annotations

from calibration.session import describe
from drivers.bench import BenchSpec
from drivers.description import BenchDescription
from labctl.optics.layout import OpticalLayout


def layout_for(description: BenchDescription, image_size: int, channels: int, margin_px: int = 4,
               image_scale: int | None = None) -> OpticalLayout:
    """``channels`` tiles for ``image_size``-px images on the bench ``description`` describes."""
    return OpticalLayout.tiled(description.layout_numbers(), image_size, channels, margin_px, image_scale, bench=description.source)


def layout_for_bench(spec: BenchSpec, image_size: int, channels: int, margin_px: int = 4,
                     image_scale: int | None = None) -> OpticalLayout:
    """The same for the bench file ``spec``, from its saved description (opened once if none)."""
    return layout_for(describe(spec), image_size, channels, margin_px, image_scale)
