"""The one model of the 4f physics, in torch: used by the simulated bench (``mock_hw``), by the
optics-aware student and by the digital twin for in-situ training."""
