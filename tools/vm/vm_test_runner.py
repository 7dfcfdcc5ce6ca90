# Finds and runs the portable tests inside the MicroPython VM: every `test_*` function of
# every /tests/test_*.py module, or of the modules named on the command line. Prints a traceback per failure and a closing count line.
# tools/port_tests.py runs it on a real MicroPython binary with `tests` naming the folder.
import os
import sys


def _run_module(name, counts):
    module = __import__(name)
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        func = getattr(module, attr)
        try:
            func()
        except Exception as exc:
            counts[1] += 1
            print("FAILED %s.%s" % (name, attr))
            sys.print_exception(exc)
        else:
            counts[0] += 1


def main(selected, tests="/tests"):
    counts = [0, 0]  # passed, failed
    names = sorted(f[:-3] for f in os.listdir(tests) if f.startswith("test_") and f.endswith(".py"))
    for name in names:
        if selected and name not in selected:
            continue
        try:
            _run_module(name, counts)
        except Exception as exc:  # an import error fails the whole module
            counts[1] += 1
            print("FAILED to import %s" % name)
            sys.print_exception(exc)
    import lwm2m

    print("micropython-vm: lwm2m loaded from %s" % lwm2m.__file__)  # /lib or a ROMFS image's /rom/lib
    print("micropython-vm: %d passed, %d failed" % (counts[0], counts[1]))
    return 1 if counts[1] or not counts[0] else 0
