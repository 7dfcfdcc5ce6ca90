# The single portability boundary: gives CPython what MicroPython has and CPython lacks, so
# lib/ and firmware/ run unchanged on the host. The test configuration and the host runner
# put this folder on sys.path and call install(); nothing else may.
import time

# Board ticks wrap at 2**30; the host wraps at the same period so wrap bugs show up here too.
_TICKS_PERIOD = 1 << 30
_TICKS_MASK = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD >> 1


def ticks_ms():
    return int(time.monotonic() * 1000) & _TICKS_MASK


def ticks_us():
    return int(time.monotonic() * 1000000) & _TICKS_MASK


def ticks_add(ticks, delta):
    # MicroPython refuses a delta that ticks_diff could not give back (half the period or
    # more either way): the host must fail where a board fails, not wrap silently.
    if not -_TICKS_HALF < delta < _TICKS_HALF:
        raise OverflowError("ticks interval overflow")
    return (ticks + delta) & _TICKS_MASK


def ticks_diff(end, start):
    return ((end - start + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


def sleep_ms(ms):
    time.sleep(ms / 1000)


def sleep_us(us):
    time.sleep(us / 1000000)


def install():
    for func in (ticks_ms, ticks_us, ticks_add, ticks_diff, sleep_ms, sleep_us):
        if not hasattr(time, func.__name__):
            setattr(time, func.__name__, func)
