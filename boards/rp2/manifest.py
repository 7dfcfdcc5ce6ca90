# Freeze manifest for building your own Pico W MicroPython firmware with the LwM2M client
# inside it (frozen bytecode runs from flash and leaves the heap to your application). In
# the micropython/ports/rp2 directory of a MicroPython checkout:
#   make BOARD=RPI_PICO_W FROZEN_MANIFEST=/path/to/boards/rp2/manifest.py
# then flash the .uf2 and copy main.py, config.json and the objects/ folder onto the board
# as usual (main.py is not frozen). Your own app.mpy copied onto the board (make deploy
# does) comes before the frozen app.py in sys.path. Relative paths below are taken from
# this file's directory.
include("$(PORT_DIR)/boards/manifest.py")  # what every rp2 board freezes
require("bundle-networking")  # ntptime, mip, requests...: the Pico W's own manifest adds it
package("lwm2m", base_path="../../lib")
module("app.py", base_path="../../firmware")  # the supervisor main.py runs
module("config.py", base_path="../../firmware")  # its reader of config.json
module("board.py")
module("wifi_board.py", base_path="../common")  # what board.py takes from boards/common
