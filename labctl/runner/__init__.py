"""The runner: inputs onto the input modulator, frames off the camera, predictions into a record."""
