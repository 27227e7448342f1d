"""One PNG per calibration: phase vs gray level with the fit, photon-transfer curve, registration residuals."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from calibration.records import CalibrationRecord  # noqa: E402


def plot_record(record: CalibrationRecord, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    a = record.arrays
    if record.kind == "slm_phase":
        source = "split-screen fringes" if record.params.get("method") == "interferometric" else "first orders"
        ax.plot(a["measured_gray"], a["measured_phase"], ".", ms=4, label=f"measured ({source})")
        ax.plot(np.arange(len(a["phase_global"])), a["phase_global"], "-", label="monotone fit (full panel)")
        regions = a["phase_regions"].reshape(-1, a["phase_regions"].shape[-1])
        if len(regions) > 1:
            ax.plot(regions.T, "-", lw=0.5, color="gray", alpha=0.6)
        ax.axhline(2 * np.pi, ls=":", color="k")
        ax.set(xlabel="gray level", ylabel="phase (rad)", title=f"SLM phase response at {record.wavelength_m * 1e9:.0f} nm")
    elif record.kind == "camera":
        used = a["ptc_used"].astype(bool)
        x = a["ptc_mean_dn"] - a["ptc_dark_mean_dn"]
        y = a["ptc_var_dn2"] - a["ptc_dark_var_dn2"]
        ax.plot(x[~used], y[~used], "x", color="gray", label="not fitted")
        ax.plot(x[used], y[used], "o", label="fitted (< 70 % of saturation)")
        k = record.params["gain_dn_per_e"]
        ax.plot([0, x.max()], [0, k * x.max()], "-", label=f"K = {k:.4g} DN/e⁻")
        ax.set(xlabel="μ_y − μ_dark (DN)", ylabel="σ²_y − σ²_dark (DN²)", title="Photon-transfer curve")
    elif record.kind == "input_response":
        ax.plot(a["gray"], a["relative_intensity"], "o", ms=3, label="measured intensity (of full on)")
        ax.plot(np.arange(len(a["amplitude"])), a["amplitude"], "-", label="effective amplitude")
        leak = record.params.get("leak_amplitude")
        title = f"Input modulator: {record.params['model']}" + (f"\ndark pixels' leak {leak:.4f} of full on (field)" if leak is not None else "")
        ax.set(xlabel="gray level", ylabel="relative to full on", title=title)
    else:
        from calibration.registration import RadialWarp

        warp = RadialWarp.from_dict(record.params["distortion"]) if record.params.get("distortion") else None
        for key, label in (("input", "input modulator"), ("fourier", "Fourier SLM")):
            src = a[f"{key}_spot_pixels" if key == "input" else "fourier_k"]
            dst = a[f"{key}_spot_camera"]
            ok = a[f"{key}_spot_used"].astype(bool)
            affine = np.asarray(record.params[f"{key}_to_camera"])
            pred = src[ok] @ affine[:, :2].T + affine[:, 2]
            if warp is not None:
                pred = warp(pred)
            res = dst[ok] - pred
            ax.quiver(pred[:, 0], pred[:, 1], res[:, 0], res[:, 1], angles="xy", scale_units="xy", scale=0.02,
                      label=f"{label} (×50), RMS {np.sqrt(np.mean(np.sum(res**2, 1))):.3f} px", color="C0" if key == "input" else "C1")
        ax.invert_yaxis()
        title = "Registration residuals" + (" (after the lens distortion)" if warp is not None else "")
        ax.set(xlabel="camera column", ylabel="camera row", title=title, aspect="equal")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
