# The stateful random test in short, for the MicroPython VM (and pytest): seeded sequences of
# random well-formed requests against a client observed on everything (see hostile.py; the
# long run is host_tests/test_hostile_props.py). A failing seed replays the same way on
# CPython: hostile.run_sequence(hostile.Picker(seed).pick, STEPS).
from hostile import Picker, run_sequence

SEEDS = 50
STEPS = 20


def test_random_requests_never_break_the_client():
    for seed in range(1, SEEDS + 1):
        try:
            run_sequence(Picker(seed).pick, STEPS)
        except AssertionError as exc:
            raise AssertionError("seed %d: %s" % (seed, exc))
