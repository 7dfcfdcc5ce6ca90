# The modules lib/ and the boards' code use that are C on ESP32 and rp2 but frozen Python in
# the MicroPython VM of the tests (binascii alone keeps 7.4 KB of heap there, os 1.6 KB):
# the bench modules import this first, before any heap figure is read, so that none of it
# is counted as the client's.
import binascii  # noqa: F401
import os  # noqa: F401
import time  # noqa: F401
