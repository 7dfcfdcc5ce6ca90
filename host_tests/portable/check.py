# Helpers for the portable tests, which run under pytest and inside the MicroPython VM, so
# they cannot use pytest's fixtures or pytest.raises.
from lwm2m import Error


def raises(exc_type, func, *args):
    # Calls func(*args), asserts it raised exc_type and returns the exception.
    try:
        func(*args)
    except exc_type as exc:
        return exc
    raise AssertionError("%s did not raise %s" % (func.__name__, exc_type.__name__))


def codec_error(func, *args):
    # Calls func(*args) and asserts it raised the codecs' Error; returns it.
    return raises(Error, func, *args)
