# Runs first at every start, before main.py. Kept minimal so that nothing here can lock the
# board up: the USB REPL must stay reachable whatever config.json or the network do.
# To keep main.py from starting (to repair a board over USB), create a file named "safe":
#   mpremote exec "open('safe', 'w').close()"   then reset; remove it to run again.
# Safe mode also holds back an application-bundle update (firmware/BUNDLE.md): nothing is
# swapped or rolled back while someone works on the board.
import gc
import os

gc.collect()
if "safe" in os.listdir():
    print("safe mode: main.py will not start the client (remove the file 'safe' to leave it)")
else:
    # A bundle update to swap in, to finish after a power cut, or on trial: only then is the
    # swap code loaded (bundle_swap.py), so a normal start costs one listdir.
    try:
        _update = os.listdir("/update")
    except OSError:
        _update = ()
    if "journal" in _update or "apply" in _update or "trial" in _update:
        try:
            import bundle_swap

            bundle_swap.boot()
        except Exception as exc:  # the REPL stays free; the next reset tries again
            print("update: the swap failed: %r" % (exc,))
    del _update
    gc.collect()
