# The shim's ticks arithmetic matches MicroPython's: these run in both interpreters.
import time


def test_ticks_diff_across_the_wrap():
    # 2**30 - 10 is 10 ms before the wrap; 5 is 15 ms after that
    assert time.ticks_diff(5, (1 << 30) - 10) == 15
    assert time.ticks_diff((1 << 30) - 10, 5) == -15


def test_ticks_add_wraps():
    assert time.ticks_add((1 << 30) - 1, 1) == 0
    assert time.ticks_diff(time.ticks_add(100, 2500), 100) == 2500


def test_sleep_ms_advances_ticks():
    start = time.ticks_ms()
    time.sleep_ms(20)
    assert time.ticks_diff(time.ticks_ms(), start) >= 19
