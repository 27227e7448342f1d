"""The one base class of every error labctl raises on purpose.

It sits below every layer (drivers ← calibration ← labctl, and the device-free optics model beside
them), so that each can derive its errors from it without importing another layer's code.
"""

from __future__ import annotations


class LabctlError(Exception):
    """Base of every error labctl raises on purpose: bad input, a device that failed, a refused file.

    Its message is meant for the operator and names the device, file, table or value. The CLI prints
    these as one line; any other exception is a bug in labctl and is shown with its traceback.
    """
