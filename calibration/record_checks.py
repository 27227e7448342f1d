"""Content checks of the camera and registration records a bench makes active, before they are applied.

A record that parses can still be unusable: a PRNU of 0 or a NaN dark map turns every corrected
frame into inf/NaN (which surfaced far downstream as "SVD did not converge"), and a registration
translated by 10⁹ px puts every channel tile off the sensor while the run goes on reading zeros.
Both are refused here, naming the record file and the value at fault:

* camera: ``dark_map``, ``prnu`` and ``hot_pixels`` 2-D of one shape (the open camera's sensor
  shape); the dark map finite; PRNU finite and within :data:`PRNU_RANGE`; gain, read noise, dark
  offset and saturation finite (gain and saturation positive);
* registration: both maps 2×3 and finite, the input map not degenerate; the input modulator's centre
  lands on the sensor and its corners within :data:`SENSOR_MARGIN` of the sensor's size around it.
"""

from __future__ import annotations

import math

import numpy as np

from calibration.errors import CalibrationMismatch, CalibrationRecordError
from calibration.records import CalibrationRecord
from drivers.slm import PixelGrid

#: a pixel's sensitivity relative to its neighbours; outside this range it is a defect to mark hot
PRNU_RANGE = (0.1, 10.0)
#: how far (as a fraction of the sensor's width and height) the input modulator's corners may land
#: off the sensor: the image of the modulator may be a little larger than the sensor, never elsewhere
SENSOR_MARGIN = 0.25
#: smallest |determinant| of the input map's linear part (camera px² per input px²)
MIN_AREA_SCALE = 1e-6


def _refuse(source: str, record: CalibrationRecord, message: str) -> CalibrationRecordError:
    return CalibrationRecordError(f"{record.kind} record {source} ({record.id}): {message}")


def check_camera_record(source: str, record: CalibrationRecord, sensor: PixelGrid | None = None) -> None:
    """Refuse a camera record whose correction would make frames non-finite (or of another sensor)."""
    arrays = {}
    for name in ("dark_map", "prnu", "hot_pixels"):
        if name not in record.arrays:
            raise _refuse(source, record, f"lacks the array {name!r}")
        arrays[name] = np.asarray(record.arrays[name])
        if arrays[name].ndim != 2:
            raise _refuse(source, record, f"{name} has shape {arrays[name].shape}; expected a 2-D map")
    shape = arrays["dark_map"].shape
    for name in ("prnu", "hot_pixels"):
        if arrays[name].shape != shape:
            raise _refuse(source, record, f"{name} has shape {arrays[name].shape}, the dark map {shape}")
    if arrays["hot_pixels"].dtype != bool:
        raise _refuse(source, record, f"hot_pixels has dtype {arrays['hot_pixels'].dtype}; expected booleans")
    for name in ("dark_map", "prnu"):
        if not np.issubdtype(arrays[name].dtype, np.number) or np.iscomplexobj(arrays[name]):
            raise _refuse(source, record, f"{name} has dtype {arrays[name].dtype}; expected real numbers")
    dark = arrays["dark_map"]
    if not np.isfinite(dark).all():
        raise _refuse(source, record, f"dark_map has {int((~np.isfinite(dark)).sum())} NaN/inf pixel(s)")
    prnu = arrays["prnu"].astype(np.float64)
    lo, hi = PRNU_RANGE
    bad = ~(np.isfinite(prnu) & (prnu >= lo) & (prnu <= hi))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise _refuse(
            source, record,
            f"prnu = {arrays['prnu'][row, col]} at pixel (row {row}, col {col}) ({int(bad.sum())} pixel(s) outside "
            f"[{lo:g}, {hi:g}] or not finite); recalibrate the camera",
        )
    for key, positive in (("gain_dn_per_e", True), ("read_noise_e", False), ("dark_offset_dn", False), ("saturation_dn", True)):
        value = record.params.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (positive and value <= 0):
            raise _refuse(source, record, f"{key} = {value!r} is not a finite{' positive' if positive else ''} number")
    if sensor is not None and shape != sensor.shape:
        raise CalibrationMismatch(
            f"camera record {source} ({record.id}): its maps are {shape[0]}x{shape[1]}, the camera's sensor is "
            f"{sensor.rows}x{sensor.cols}; recalibrate the camera"
        )


def _affine(source: str, record: CalibrationRecord, key: str) -> np.ndarray:
    try:
        affine = np.asarray(record.params[key], dtype=np.float64)
    except KeyError:
        raise _refuse(source, record, f"lacks {key!r}") from None
    except (TypeError, ValueError):
        raise _refuse(source, record, f"{key} = {record.params[key]!r} is not a 2x3 matrix of numbers") from None
    if affine.shape != (2, 3) or not np.isfinite(affine).all():
        raise _refuse(source, record, f"{key} = {record.params[key]!r} is not a finite 2x3 matrix")
    return affine


def check_registration_record(source: str, record: CalibrationRecord, input_grid: PixelGrid | None = None,
                              sensor: PixelGrid | None = None) -> None:
    """Refuse a registration that is malformed, degenerate or (with both grids) that puts the input
    modulator's image off the sensor."""
    affine = _affine(source, record, "input_to_camera")
    _affine(source, record, "fourier_to_camera")
    rms = record.residuals.get("rms_px")
    if isinstance(rms, bool) or not isinstance(rms, (int, float)) or not math.isfinite(rms) or rms < 0:
        raise _refuse(source, record, f"rms_px = {rms!r} is not a finite non-negative number")
    if abs(np.linalg.det(affine[:, :2])) < MIN_AREA_SCALE:
        raise _refuse(source, record, f"input_to_camera = {affine.tolist()} is degenerate (it maps the modulator onto a line)")
    if input_grid is None or sensor is None:
        return
    rows, cols = input_grid.shape
    corners = np.array([[0, 0], [cols - 1, 0], [0, rows - 1], [cols - 1, rows - 1]], dtype=np.float64)
    centre = np.array([(cols - 1) / 2, (rows - 1) / 2])
    on_camera = np.vstack([centre, corners]) @ affine[:, :2].T + affine[:, 2]
    width, height = sensor.cols - 1, sensor.rows - 1
    cx, cy = on_camera[0]
    mx, my = SENSOR_MARGIN * sensor.cols, SENSOR_MARGIN * sensor.rows
    x, y = on_camera[1:, 0], on_camera[1:, 1]
    if not (0 <= cx <= width and 0 <= cy <= height) or (x < -mx).any() or (x > width + mx).any() or (y < -my).any() or (y > height + my).any():
        raise _refuse(
            source, record,
            f"input_to_camera puts the {rows}x{cols} input modulator's image off the {sensor.rows}x{sensor.cols} "
            f"sensor (its centre at camera px ({cx:.6g}, {cy:.6g}), translation {affine[:, 2].tolist()}); "
            "the channel tiles would be cut off — recalibrate the registration",
        )
