# A scripted LwM2M server made with aiocoap: one server context on 127.0.0.1:PORT whose root
# resource receives every path. It answers Register (POST /rd: 2.01, Location-Path rd/x),
# Update (POST /rd/x: 2.04), De-register (DELETE /rd/x: 2.02) and Bootstrap-Request (POST
# /bs: 2.04) and records each one with the address it came from; the same context sends
# requests to the client.
#
# The context lives on an event loop in a thread of its own, so that it keeps answering
# while the test waits for processes (the client's De-register at the end, for one). Tests
# hand coroutines to call(), which runs them on that loop with a timeout.
import asyncio
import threading
import time

import aiocoap
import aiocoap.resource
from aiocoap.numbers.codes import Code

LOCATION = ("rd", "x")


class Registrar(aiocoap.resource.Resource):
    def __init__(self):
        super().__init__()
        self.registrations = []  # the Register requests, as received
        self.updates = []
        self.deregistrations = []
        self.bootstrap_requests = []
        self.others = []  # anything else the client sent (a request we did not expect)

    async def render_post(self, request):
        path = tuple(request.opt.uri_path)
        if path == ("rd",):
            self.registrations.append(request)
            return aiocoap.Message(code=Code.CREATED, location_path=LOCATION)
        if path == LOCATION:
            self.updates.append(request)
            return aiocoap.Message(code=Code.CHANGED)
        if path == ("bs",):
            self.bootstrap_requests.append(request)
            return aiocoap.Message(code=Code.CHANGED)
        self.others.append(request)
        return aiocoap.Message(code=Code.NOT_FOUND)

    async def render_delete(self, request):
        if tuple(request.opt.uri_path) == LOCATION:
            self.deregistrations.append(request)
            return aiocoap.Message(code=Code.DELETED)
        self.others.append(request)
        return aiocoap.Message(code=Code.NOT_FOUND)

    async def render_get(self, request):
        self.others.append(request)
        return aiocoap.Message(code=Code.NOT_FOUND)

    render_put = render_get


def query_of(request):
    # Uri-Query of a request as a dict: {"ep": "name", "lt": "300", ...}
    return dict(q.split("=", 1) if "=" in q else (q, None) for q in request.opt.uri_query)


class CoapServer:
    def __init__(self, port, start_timeout=10):
        self.port = port
        self.root = Registrar()
        self.loop = asyncio.new_event_loop()
        self.ctx = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="aiocoap-server", daemon=True)
        self._thread.start()
        try:
            self.ctx = self.call(aiocoap.Context.create_server_context(
                self.root, bind=("127.0.0.1", port), transports=["udp6"]), start_timeout)
        except Exception:
            self._stop_loop()
            raise

    def call(self, coro, timeout):
        # Runs coro on the server's loop; its result, or TimeoutError after timeout seconds.
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop)
        return future.result(timeout + 2)

    def uri(self, request, path):
        # The URI of `path` at the address a request (the Register) came from.
        return request.remote.uri_base + path

    def send(self, first, code, path, payload=b"", timeout=10, **options):
        # One request to the client that sent `first`, with aiocoap Message options such as
        # content_format or accept; its answer.
        msg = aiocoap.Message(code=code, uri=self.uri(first, path), payload=payload, **options)
        return self.call(self.ctx.request(msg).response, timeout)

    def observe(self, register, path, count):
        # Observes path at the client that sent `register`: (request, first answer, [(loop
        # time, notification)] of the next `count` notifications), each awaited at most 4 s.
        async def go():
            req = self.ctx.request(aiocoap.Message(code=Code.GET, uri=self.uri(register, path), observe=0))
            first = await asyncio.wait_for(req.response, 5)
            notes = []
            updates = req.observation.__aiter__()
            while len(notes) < count:
                notes.append((asyncio.get_running_loop().time(), await asyncio.wait_for(updates.__anext__(), 4)))
            return req, first, notes

        return self.call(go(), 5 + 4 * count)

    def wait(self, predicate, timeout):
        # Polls predicate() (read from this thread: lists only grow) until true or timeout.
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.02)

    def close(self):
        try:
            if self.ctx is not None:
                self.call(self.ctx.shutdown(), 10)
        finally:
            self._stop_loop()

    def _stop_loop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()
