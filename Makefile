# The one entry point. Needs only Python 3.11+, Node 18+ and make: the first run sets up a
# virtual environment (.venv, from requirements.txt) and the Node packages (node_modules,
# from package-lock.json) by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LESHAN := build/leshan
LESHAN_SRC := host_tests/peers/leshan

.PHONY: test test-port bench run setup clean deploy objects flash vboard bundle

test: setup
	$(PY) tools/run_tests.py

# The portable tests on a real MicroPython binary, by hand (not in make test: CI has none):
#   make test-port MICROPYTHON=/path/to/micropython [HEAPSIZE=112K]
test-port:
	$(PYTHON) tools/port_tests.py --micropython "$(MICROPYTHON)" $(if $(HEAPSIZE),--heapsize "$(HEAPSIZE)")

bench: setup
	$(PY) tools/bench.py

# The client on this host with real UDP: make run [SERVER=coap://host:port] [ENDPOINT=name]
# or make run BOOTSTRAP=coap://host:port [ENDPOINT=name] (bootstraps first, then registers)
RUN_ARGS = $(if $(SERVER),--server $(SERVER)) $(if $(BOOTSTRAP),--bootstrap $(BOOTSTRAP)) $(if $(ENDPOINT),--endpoint $(ENDPOINT))
run: $(VENV)/.installed
	$(PY) tools/host_run.py $(RUN_ARGS)

# On a board (see README): PORT is its serial port (.venv/bin/mpremote connect list).
#   make flash PORT=... FIRMWARE=file.bin [CHIP=esp32|esp32s2|esp32s3|esp32c3|esp32c6|...] [BAUD=460800]
#              [PARTITIONS=boards/esp32/partitions-4MiB-ota-romfs.csv]   (OTA slots and a ROMFS partition)
#   make flash CHIP=rp2                      prints how to copy the .uf2 onto a Pico
#   make deploy PORT=... [BOARD=esp32|rp2|vboard] [CONFIG=file.json] [FORCE=1] [NO_RESET=1] [ROMFS=1|0]
#              the compiled modules in the board's ROMFS partition if it has one big enough, else as .mpy
#              files; ROMFS=1 refuses a board without such a partition, ROMFS=0 copies .mpy files
#   make objects PORT=... DDF=file.xml       compiles one object definition and copies it
BOARD ?= esp32
BAUD ?= 460800
deploy: $(VENV)/.installed
	$(PY) tools/deploy.py --port "$(PORT)" --board "$(BOARD)" $(if $(CONFIG),--config "$(CONFIG)") $(if $(FORCE),--force) $(if $(NO_RESET),--no-reset) --romfs "$(or $(patsubst 1,yes,$(patsubst 0,no,$(ROMFS))),auto)"

objects: $(VENV)/.installed
	$(PY) tools/deploy.py --port "$(PORT)" --objects $(DDF) $(if $(NO_RESET),--no-reset)

# A firmware update for boards without OTA partitions (firmware/BUNDLE.md): the client's files
# in one package for a server to send to /5/0/0 or /5/0/1. BOARD defaults to rp2 here.
#   make bundle [BOARD=rp2|vboard|esp32] [VERSION=x (default: git describe)] [OUT=build/bundle-BOARD-VERSION.bin]
bundle: $(VENV)/.installed
	$(PY) tools/bundle.py --board "$(if $(filter file,$(origin BOARD)),rp2,$(BOARD))" $(if $(VERSION),--version "$(VERSION)") $(if $(OUT),--out "$(OUT)")

# The virtual board: the MicroPython VM behind a pseudo-terminal, reachable as build/vboard/tty
# (make deploy PORT=build/vboard/tty BOARD=vboard). Its files are kept in build/vboard/flash,
# everything it prints is also appended to build/vboard/serial.log. Ctrl-C stops it.
#   make vboard [VBOARD_WIFI="ssid:password ..."] [VBOARD_ID=hex] [VBOARD_DIR=build/vboard]
#               [VBOARD_HOST_NETWORK=1]   (its sockets on every host interface, not loopback only)
#               [VBOARD_FAST_SLEEP=1]     (its light and deep sleeps take no time: its clocks jump ahead)
#               [VBOARD_ROMFS=bytes]      (a ROMFS partition of that size, for make deploy ROMFS=1)
VBOARD_DIR ?= build/vboard
VBOARD_WIFI ?= vboard:micropython
VBOARD_ID ?= 02005e100001
vboard: setup
	$(PY) tools/vboard.py --link $(VBOARD_DIR)/tty --flash $(VBOARD_DIR)/flash --log $(VBOARD_DIR)/serial.log \
		--id $(VBOARD_ID) $(foreach ap,$(VBOARD_WIFI),--wifi "$(ap)") $(if $(VBOARD_HOST_NETWORK),--host-network) $(if $(VBOARD_FAST_SLEEP),--fast-sleep) $(if $(VBOARD_ROMFS),--romfs-bytes $(VBOARD_ROMFS))

# CHIP=rp2 only prints instructions, so it needs no virtual environment.
flash: $(if $(filter rp2,$(CHIP)),,$(VENV)/.installed)
	$(if $(filter rp2,$(CHIP)),$(PYTHON),$(PY)) tools/flash.py --port "$(PORT)" --firmware "$(FIRMWARE)" --chip "$(CHIP)" --baud "$(BAUD)" $(if $(PARTITIONS),--partitions "$(PARTITIONS)")

setup: $(VENV)/.installed node_modules/.installed $(LESHAN)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# package-lock.json alone decides what npm ci installs (package.json also carries the mip
# manifest, whose changes need no reinstall).
node_modules/.installed: package-lock.json
	node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error("Node 18 or newer is needed"); process.exit(1) }'
	npm ci --no-audit --no-fund
	touch $@

# The Leshan test peer (host_tests/peers/leshan): Leshan's jars, pinned by its pom.xml, come
# from Maven Central once (then from ~/.m2, offline) and LeshanPeer.java (the server) and
# LeshanBootstrapPeer.java (the bootstrap server, which uses LeshanPeer's helpers) are compiled
# against them; a change to any of these files rebuilds. The old jars go first, so that a
# version bump leaves no second copy on the classpath. Maven resolves a relative
# outputDirectory against the pom's folder, hence $(CURDIR).
$(LESHAN)/.installed: $(LESHAN_SRC)/pom.xml $(LESHAN_SRC)/LeshanPeer.java $(LESHAN_SRC)/LeshanBootstrapPeer.java
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ] || ! command -v javac >/dev/null || ! command -v mvn >/dev/null; then \
		echo "Java 17 or newer (a JDK) and Maven are needed for the Leshan tests: apt-get install openjdk-17-jdk-headless maven" >&2; \
		exit 1; \
	fi
	rm -rf $(LESHAN)/lib $(LESHAN)/classes
	mvn -B -q -f $(LESHAN_SRC)/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(LESHAN)/lib
	javac --release 17 -cp '$(LESHAN)/lib/*' -d $(LESHAN)/classes $(LESHAN_SRC)/LeshanPeer.java $(LESHAN_SRC)/LeshanBootstrapPeer.java
	touch $@

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .hypothesis
