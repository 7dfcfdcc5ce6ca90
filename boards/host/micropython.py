# CPython stand-in for MicroPython's `micropython` module (part of the CPython shim; see
# cpython_shim.py). Only what lib/ and firmware/ use.


def const(value):
    return value


# The host cannot lock its heap; the MicroPython VM tests prove the no-allocation paths.
def heap_lock():
    return 0


def heap_unlock():
    return 0
