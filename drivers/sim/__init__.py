"""In-memory simulators of the bench's serial instruments, reachable as pyserial URLs (``labsim://``).

CI has no shutter or laser on a serial port; these simulate the instruments' command sets behind
pyserial's own URL-handler mechanism, so the drivers run unchanged against them.
"""
