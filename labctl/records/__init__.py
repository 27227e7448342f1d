"""Records of what was run, on which devices, with which calibration: HDF5 run files and provenance."""
