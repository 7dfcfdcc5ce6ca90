# Runs first at every start, before main.py. Kept minimal so that nothing here can lock the
# board up: the USB REPL must stay reachable whatever config.json or the network do.
# To keep main.py from starting (to repair a board over USB), create a file named "safe":
#   mpremote exec "open('safe', 'w').close()"   then reset; remove it to run again.
import gc
import os

gc.collect()
if "safe" in os.listdir():
    print("safe mode: main.py will not start the client (remove the file 'safe' to leave it)")
