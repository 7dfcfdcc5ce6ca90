# The shim's ticks arithmetic matches MicroPython's: these run in both interpreters. The
# period comes from the interpreter (2**30 on boards, in the VM and in the shim; 2**62 on a
# 64-bit unix port): ticks_add(0, -1) is the largest ticks value.
import time

from check import raises

PERIOD = time.ticks_add(0, -1) + 1


def test_ticks_diff_across_the_wrap():
    # PERIOD - 10 is 10 ms before the wrap; 5 is 15 ms after that
    assert time.ticks_diff(5, PERIOD - 10) == 15
    assert time.ticks_diff(PERIOD - 10, 5) == -15


def test_ticks_add_wraps():
    assert time.ticks_add(PERIOD - 1, 1) == 0
    assert time.ticks_diff(time.ticks_add(100, 2500), 100) == 2500


def test_ticks_add_refuses_half_the_period():
    half = PERIOD // 2
    assert time.ticks_diff(time.ticks_add(0, half - 1), 0) == half - 1
    assert time.ticks_diff(time.ticks_add(0, 1 - half), 0) == 1 - half
    raises(OverflowError, time.ticks_add, 0, half)
    raises(OverflowError, time.ticks_add, 0, -half)


def test_sleep_ms_advances_ticks():
    start = time.ticks_ms()
    time.sleep_ms(20)
    assert time.ticks_diff(time.ticks_ms(), start) >= 19
