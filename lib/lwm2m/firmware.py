# Firmware Update (object 5): the state machine of TS Core 1.1 E.6 over a sink that the
# board provides (boards/*/). A sink is any object with these methods, called in this order:
#   begin(size)          a new image; size in bytes when known, else None. Discards any
#                        earlier partial or unapplied image. Raises Failed(2) when the image
#                        cannot fit.
#   write(offset, data)  stores data at offset. Offsets grow from 0 with each chunk; a write
#                        at a lower offset (a transfer restarted at a block) rewrites from
#                        there on and forgets what lay beyond.
#   resume(offset)       after a restart: the CRC-32 (binascii.crc32, an int) of the first
#                        `offset` bytes kept from before, or None when they are not there any
#                        more; writes then continue at offset. (CRC-32 because it can be
#                        carried on from an int: MicroPython's hashlib cannot give the digest
#                        of a prefix and go on hashing.)
#   finish()             the image is complete: verifies it; returns (name, version) from
#                        the package. Raises Failed(5) on a bad digest, Failed(6) on a package
#                        of another kind or for another chip.
#   apply()              makes the verified image the one the next boot runs (the caller
#                        then resets the board). Raises Failed(8) when it cannot.
#   outcome()            at start: None when no update was applied before this boot; else
#                        (result, version): (1, version) when the new image runs and waits
#                        for confirm(), (8, version) when it was rolled back.
#   confirm()            the new image registered: keep it.
#   rollback()           the new image did not register in time: the next boot runs the old
#                        one (the caller then resets).
# A sink reports a failure by raising Failed; MemoryError counts as result 3 and OSError as 2
# (flash full or failing) wherever they come from.
import time

from micropython import const

from lwm2m import Error, release, store

_FIRMWARE = const(5)
_DEVICE = const(3)
# State (/5/0/3)
_IDLE = const(0)
_DOWNLOADING = const(1)
_DOWNLOADED = const(2)
_UPDATING = const(3)
# Update Result (/5/0/5)
_SUCCESS = const(1)
_NO_FLASH = const(2)
_NO_RAM = const(3)

_METHOD_NOT_ALLOWED = const(0x85)
_INCOMPLETE = const(0x88)
_TOO_LARGE = const(0x8D)
_SERVER_ERROR = const(0xA0)
_RESET_DELAY_MS = const(2000)  # the Execute's answer and the Updating notification leave first
_IDLE_MS = const(60000)


class Failed(Exception):
    # An update step failed with an Update Result (/5/0/5) of TS Core 1.1 E.6: 2 not enough
    # flash, 3 out of RAM, 4 connection lost, 5 integrity check failure, 6 unsupported
    # package type, 7 invalid URI, 8 update failed, 9 unsupported protocol.
    def __init__(self, result, message):
        super().__init__(message)
        self.result = result


def result_of(exc):
    # The Update Result of an exception from a sink or a download.
    if isinstance(exc, Failed):
        return exc.result
    return _NO_RAM if isinstance(exc, MemoryError) else _NO_FLASH


class Firmware:
    # /5/0 on a sink, for one client: push (Package, block by block), pull (Package URI, by
    # lwm2m.download), Update, and after the reset the new image's trial: it is confirmed
    # once a server registered, rolled back when none did within confirm_s.
    #   reset(): restarts the board; progress: the file where a pull's progress (and the
    #   installed version) are kept, None for none; psk: (identity, key) for coaps:// URIs
    #   whose server has no Security instance.
    def __init__(self, client, sink, reset, progress=None, confirm_s=300, psk=None):
        self.client = client
        self.sink = sink
        self.reset = reset
        self.progress = progress
        self.psk = psk
        self.download = None  # the lwm2m.download.Download under way
        self.reset_at = None  # ticks when the board resets into the applied image
        self.trial = None  # [version, ms it has, deadline ticks] while the new image waits to register
        self.saved = {}  # what progress holds
        inst = self.inst = client.model.add_instance(_FIRMWARE, 0, {
            1: "", 3: _IDLE, 5: 0, 6: "", 7: "", 8: {0: 0, 1: 1}, 9: 2})
        client.stream("/5/0/0", self._package)
        inst.on_write(1, self._uri)
        inst.on_execute(2, self._update)
        client.tasks.append(self)
        self._start(confirm_s)

    def _start(self, confirm_s):
        # What the last boot left: an update to confirm or that was rolled back, a pull to go
        # on with, the version installed by an earlier update.
        if self.progress:
            try:
                self.saved = store.load(self.progress) or {}
            except store.StoreError as exc:
                self.client.log("firmware: %s: starting afresh" % exc)
        outcome = self.sink.outcome()
        if outcome:
            result, version = outcome
            if result == _SUCCESS:
                self.client.log("firmware: %s runs on trial: confirmed once registered" % version)
                self._set(_UPDATING, 0)
                self.trial = [version, confirm_s * 1000, None]  # the deadline from the first step
            else:
                self.client.log("firmware: %s was rolled back (result %d)" % (version, result))
                self._set(_IDLE, result)
        if self.saved.get("installed"):
            self.client.model.instance(_DEVICE, 0).set(3, self.saved["installed"])
        pull = self.saved.get("pull")
        if pull and not outcome:
            self.inst.set(1, pull["uri"])
            self._pull(pull["uri"], pull)

    # -- what the poll loop drives

    def step(self, now):
        if self.reset_at is not None and time.ticks_diff(now, self.reset_at) >= 0:
            self.reset_at = None
            try:
                self.sink.apply()
            except Exception as exc:
                self._fail(exc, _DOWNLOADED)
                return _IDLE_MS
            self.client.log("firmware: %s applied: resetting" % self.inst.get(7))
            self.reset()
            return 0  # where reset() only asks for it (the host), the loop sees it at once
        trial = self.trial
        if trial:
            if trial[2] is None:
                trial[2] = time.ticks_add(now, trial[1])
            if self.client.registered():
                self.trial = None
                self.sink.confirm()
                self.client.model.instance(_DEVICE, 0).set(3, trial[0])
                self.saved["installed"] = trial[0]
                self._save()
                self.client.log("firmware: %s registered: confirmed" % trial[0])
                self._set(_IDLE, _SUCCESS)
            elif time.ticks_diff(now, trial[2]) >= 0:
                self.trial = None
                self.client.log("firmware: %s did not register in time: rolling back" % trial[0])
                self.sink.rollback()
                self.reset()
                return 0
        if self.reset_at is not None:
            return max(0, time.ticks_diff(self.reset_at, now))
        return 100 if trial else _IDLE_MS  # a trial waits for a registration, which poll brings

    # -- the resources

    def _set(self, state, result=None):
        self.inst.set(3, state)
        if result is not None:
            self.inst.set(5, result)

    def _package(self, offset, data, last, size):
        # One block of a pushed Package (or the whole of a short one).
        state = self.inst.get(3)
        if offset == 0:
            if last and data in (b"", b"\0"):
                self._cancel()
                return
            if state == _DOWNLOADED or state == _UPDATING:
                raise Error(_METHOD_NOT_ALLOWED, "firmware state %d: write an empty Package or URI first" % state)
            self._stop_pull()
            self._guarded(self._begin, size)
        elif state != _DOWNLOADING or self.download:
            raise Error(_INCOMPLETE, "no Package transfer under way")
        self._guarded(self.sink.write, offset, data)
        if last:
            self.finish()

    def _begin(self, size):
        self._set(_DOWNLOADING, 0)
        self.inst.set(6, "")
        self.inst.set(7, "")
        self.sink.begin(size)

    def _guarded(self, func, *args):
        # A sink step of a push: its failure sets the result and refuses the block.
        try:
            func(*args)
        except Exception as exc:
            if not isinstance(exc, (Failed, MemoryError, OSError)):
                raise
            self._fail(exc)
            raise Error(_TOO_LARGE if result_of(exc) == _NO_FLASH else _SERVER_ERROR, "firmware: %s" % exc)

    def finish(self):
        # The image is complete (pushed or pulled): Downloaded once the sink verified it.
        try:
            name, version = self.sink.finish()
        except Exception as exc:
            self._fail(exc)
            return
        self.inst.set(6, name)
        self.inst.set(7, version)
        self._forget_pull()
        self.client.log("firmware: %s %s downloaded and verified" % (name, version))
        self._set(_DOWNLOADED)

    def _fail(self, exc, state=_IDLE):
        self.download = None
        self._forget_pull()
        self.client.log("firmware: update failed (result %d): %s" % (result_of(exc), exc))
        self._set(state, result_of(exc))

    def _cancel(self):
        if self.inst.get(3) == _UPDATING:
            raise Error(_METHOD_NOT_ALLOWED, "firmware state 3: updating, too late to cancel")
        self._stop_pull()
        self._set(_IDLE, 0)

    def _uri(self, uri):
        if uri == "":
            self._cancel()
            return
        state = self.inst.get(3)
        if state != _IDLE:
            raise Error(_METHOD_NOT_ALLOWED, "firmware state %d: write an empty Package or URI first" % state)
        self._pull(uri, None)

    def _update(self, _args):
        state = self.inst.get(3)
        if state != _DOWNLOADED:
            raise Error(_METHOD_NOT_ALLOWED, "Update needs firmware state 2 (Downloaded), it is %d" % state)
        self._set(_UPDATING, 0)
        self.reset_at = time.ticks_add(self.client.now, _RESET_DELAY_MS)

    # -- the pull

    def _pull(self, uri, resumed):
        # Starts (or, with the saved progress, resumes) a download of uri.
        from lwm2m.download import Download

        self._set(_DOWNLOADING, 0)
        try:
            self.download = Download(self, uri, resumed)
        except Failed as exc:
            release("download")
            self._fail(exc)

    def _stop_pull(self):
        if self.download:
            self.download.stop()
            self.download = None
            release("download")
        self._forget_pull()

    def pulled(self, uri, offset, etag, crc):
        # Called after each block written: what a resume after a restart starts from.
        self.saved["pull"] = {"uri": uri, "offset": offset, "etag": etag, "crc": crc}
        self._save()

    def pull_done(self, exc):
        self.download = None
        release("download")
        if exc is None:
            self.finish()
        else:
            self._fail(exc)

    def _forget_pull(self):
        if self.saved.pop("pull", None) is not None:
            self._save()

    def _save(self):
        if self.progress:
            store.save(self.progress, self.saved)
