"""Lab realism: non-idealities of a real 4f bench that lie outside the digital twin's model
(:mod:`labctl.optics.twin`) and the calibrations' model families (phase-response fit, EMVA camera
model, affine registration).

Each effect is one module here (its physics, its hidden truth and how that truth is drawn from the
device's seed); :mod:`mock_hw.realism.options` reads and checks the ``realism`` sub-tables of the
bench file; :mod:`mock_hw.realism.devices` draws each device's realism truth;
:mod:`mock_hw.realism.render` is the light path that uses them, called by the optical table when any
device has realism switched on. With no ``realism`` table (the embedded default bench) none of this
code runs. The truth is kept in each device's hidden truth (``realism`` field), reachable only
through :func:`mock_hw.truth.reveal_truth`.
"""
