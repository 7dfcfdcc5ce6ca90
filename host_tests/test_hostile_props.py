# The stateful random test on CPython: hypothesis drives host_tests/portable/hostile.py, a
# hostile server sending random well-formed requests (every method, object and instance
# path, content format, Observe, Write-Attributes, Create, Delete, Execute) to a registered
# client observed on everything. After each request poll() must not raise, the one answer
# must carry a code the TS allows for the operation, and every stored value must have its
# resource's type and multiplicity. The same sequences run briefly in the MicroPython VM
# (host_tests/portable/test_hostile.py).
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "portable"))

import hostile  # noqa: E402

# Requests per sequence after the observations are set up: 2,000 sequences of this length
# take about two minutes on two cores.
STEPS = 25


@settings(max_examples=2000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_requests_never_break_the_client(data):
    hostile.run_sequence(lambda seq: data.draw(st.sampled_from(seq)), STEPS)
