# Serving the requests of the servers: each request is checked (its options, who sent it,
# the Access Control rights) and handed to lwm2m.dm, through lwm2m.block for block-wise
# transfers; Observe registers with the client's observer. One log line per request. The
# client (lwm2m.client) holds the sessions this reads: its servers, the bootstrap under way.
from micropython import const

from lwm2m import Error, clip, coap, dm, formats

_GET = const(0x01)
_POST = const(0x02)
_PUT = const(0x03)
_DELETE = const(0x04)
_FETCH = const(0x05)
_IPATCH = const(0x07)
_CREATED = const(0x41)
_CHANGED = const(0x44)
_CONTENT = const(0x45)
_BAD_REQUEST = const(0x80)
_UNAUTHORIZED = const(0x81)
_BAD_OPTION = const(0x82)
_NOT_FOUND = const(0x84)
_METHOD_NOT_ALLOWED = const(0x85)
_NOT_ACCEPTABLE = const(0x86)
_UNSUPPORTED_FORMAT = const(0x8F)
_SERVER_ERROR = const(0xA0)
_UNAVAILABLE = const(0xA3)
_OBSERVE = const(6)
_LOCATION_PATH = const(8)
_CONTENT_FORMAT = const(12)
_ACCEPT = const(17)
_LINK_FORMAT = const(40)
_OPAQUE = const(42)
_SENML = const((110, 112))  # SenML JSON and SenML CBOR: what composite operations take
# Access rights (the ACL bits of object 2, checked by lwm2m.access)
_READ = const(1)
_WRITE = const(2)
_EXECUTE = const(4)
_DELETE_BIT = const(8)
_CREATE = const(16)
# The critical options a request may carry: Uri-Host, Uri-Port, Uri-Path, Uri-Query, Accept,
# Block2, Block1. Any other (If-Match, Proxy-Uri ...) is answered 4.02 Bad Option.
_UNDERSTOOD = (3, 7, 11, 15, 17, 23, 27)


class Serve:
    def __init__(self, client):
        self.client = client

    def handle(self, request, addr):
        # Answers one request; every request and its answer make one log line. Anything but
        # lwm2m.Error is answered 5.00 by the exchange, which logs it.
        try:
            response = self.client.blocks.serve(request, addr, self._dispatch, self.client.streams)
        except Error as exc:
            self.client.log("%s%s %s -> %s (%s)" % (self._who(addr), coap.code_name(request.code), _log_path(request), coap.code_name(exc.code or _SERVER_ERROR), exc))
            raise
        self.client.log("%s%s %s -> %s" % (self._who(addr), coap.code_name(request.code), _log_path(request), coap.code_name(response.code)))
        return response

    def _who(self, addr):
        # What starts a request's log line: with several servers, the one that asked.
        server = self.client.server_at(addr) if len(self.client.servers) > 1 else None
        return server.uri + ": " if server else ""

    def _dispatch(self, request, addr, piece):
        # piece: (offset, last, size1) of one block of a streamed write, else None
        bootstrap = self.client.bootstrap
        if bootstrap is not None and addr == bootstrap.addr:
            _check_options(request)
            if piece is not None:
                raise Error(_METHOD_NOT_ALLOWED, "a bootstrap server does not write %s" % request.path())
            return _response(*bootstrap.serve(request))
        server = self.client.server_at(addr)
        if server is None:
            raise Error(_UNAUTHORIZED, "not a registered server")
        if bootstrap is not None:
            raise Error(_UNAVAILABLE, "bootstrapping: ask again once registered")
        if server.disabled():
            raise Error(_UNAUTHORIZED, "disabled: not serving this server until it registers again")
        _check_options(request)
        path = dm.parse_path(request.get_all(11))
        code = request.code
        cf = request.get(_CONTENT_FORMAT)
        accept = request.get(_ACCEPT)
        if piece is None and (code == _PUT or code == _POST) and dm.path_str(path) in self.client.streams:
            piece = (0, True, len(request.payload))  # a stream's write short enough for one message
        if piece is not None:
            self._allow(server, _WRITE, path)
            if cf is not None and cf != _OPAQUE:
                raise Error(_UNSUPPORTED_FORMAT, "block-wise writes of %s take application/octet-stream" % dm.path_str(path))
            self.client.streams[dm.path_str(path)](piece[0], request.payload, piece[1], piece[2])
            result = _CHANGED, None, b""
        elif code == _GET:
            self._allow(server, _READ, path)
            if accept == _LINK_FORMAT:
                result = dm.discover(self.client.model, path, lambda p: self.client.observer.attributes_of(server.ssid, p),
                                     self.visible(server))
            else:
                return self._read(server, request, path, accept)
        elif code == _PUT:
            if request.payload or cf is not None:
                self._allow(server, _WRITE, path)
                result = dm.write(self.client.model, path, cf, request.payload, True)
            else:
                self._allow(server, _READ, path)
                rtype = dm.target_type(self.client.model, path)
                self.client.observer.write_attributes(server.ssid, path, request.query(), rtype)
                result = _CHANGED, None, b""
        elif code == _POST:
            if len(path) == 1:
                self._allow(server, _CREATE, path)
                result = dm.create(self.client.model, path, cf, request.payload, server.ssid, lambda obj, iid: self._admit(server, obj, iid))
                if self.client.access:
                    self.client.access.created(self.client.model, server.ssid, path[0], int(result[2].rsplit("/", 1)[1]))
            elif len(path) == 3:
                self._allow(server, _EXECUTE, path)
                result = dm.execute(self.client.model, path, cf, request.payload)
            else:
                self._allow(server, _WRITE, path)
                result = dm.write(self.client.model, path, cf, request.payload, False)
        elif (code == _FETCH or code == _IPATCH) and not path:
            if cf not in _SENML:
                raise Error(_UNSUPPORTED_FORMAT, "composite operations take SenML JSON or SenML CBOR, not %r" % cf)
            if code == _FETCH:
                return self._read_composite(server, request, cf, cf if accept is None else accept)
            records = formats.decode(cf, (), request.payload, dm.rtype_of(self.client.model, ()))
            result = dm.write_composite(self.client.model, records, lambda p: self._allow(server, _WRITE, p))
        elif code == _DELETE:
            if path == (1, server.instance.iid):
                raise Error(_METHOD_NOT_ALLOWED, "a server cannot delete the Server instance it is registered through")
            self._allow(server, _DELETE_BIT, path)
            result = dm.delete(self.client.model, path)
            if self.client.access:
                self.client.access.deleted(self.client.model, path[0], path[1])
        else:
            raise Error(_METHOD_NOT_ALLOWED, "method %s" % coap.code_name(code))
        return _response(*result)

    def _allow(self, server, bit, path):
        if self.client.access:
            self.client.access.allow(self.client.model, server, bit, path)

    def visible(self, server):
        # What an object-level Read or Discover of this server lists: None for everything.
        return self.client.access.visible(self.client.model, server) if self.client.access else None

    def _read_composite(self, server, request, cf, accept):
        # Read-Composite (FETCH /), and Observe-Composite with Observe 0 (1 cancels it): the
        # values of the paths named, in one SenML payload.
        from lwm2m import senml

        if accept not in _SENML:
            raise Error(_NOT_ACCEPTABLE, "composite reads answer in SenML JSON or SenML CBOR, not %r" % accept)
        paths = senml.decode_paths(request.payload, cf == 112)
        response = _response(_CONTENT, accept, formats.encode(accept, (), self.composite(server, paths)))
        observe = request.get(_OBSERVE)
        client = self.client
        if observe == 0:
            sampled = any(self._sampled(p) for p in paths)
            obs = client.observer.add(server.ssid, request.token, (), accept, sampled, client.now, paths)
            if obs is None:
                client.log("no more observations for %s: a composite observe answered as a read" % server.uri)
            else:
                response.add(_OBSERVE, obs.seq)
        elif observe == 1:
            client.observer.cancel(server.ssid, request.token)
        return response

    def composite(self, server, paths):
        # The records of every path that exists and that the server may read; 4.04 when that
        # is none of them.
        records = []
        model = self.client.model
        for path in paths:
            try:
                self._allow(server, _READ, path)
                records += dm.read_records(model, path, self.visible(server))
            except Error as exc:
                if exc.code not in (_UNAUTHORIZED, _NOT_FOUND, _METHOD_NOT_ALLOWED):
                    raise
        if not records:
            raise Error(_NOT_FOUND, "none of the paths holds a value this server may read")
        return records

    def _read(self, server, request, path, accept):
        observe = request.get(_OBSERVE)
        result = dm.read(self.client.model, path, accept, self.visible(server))
        response = _response(*result)
        if observe == 0:
            obs = self.client.observer.add(server.ssid, request.token, path, result[1], self._sampled(path), self.client.now)
            if obs is None:
                self.client.log("%s: no more observations for %s: answered as a Read" % (dm.path_str(path), server.uri))
            else:
                response.add(_OBSERVE, obs.seq)
        elif observe == 1:
            self.client.observer.cancel(server.ssid, request.token)
        return response

    def _sampled(self, path):
        # Is any value under path behind a read hook (so changes must be looked for)?
        obj = self.client.model.object(path[0])
        if obj is None:
            return False
        for inst in obj.instances.values():
            if len(path) > 1 and inst.iid != path[1]:
                continue
            for rid in (path[2],) if len(path) > 2 else obj.resources:
                if inst.hook(rid, 0):
                    return True
        return False

    def _admit(self, server, obj, iid):
        # A server's Create within its cap.
        mine = 0
        for inst in obj.instances.values():
            if inst.creator == server.ssid:
                mine += 1
        if mine >= self.client.limits["instances"]:
            raise Error(_BAD_REQUEST, "%s created %d instances of /%d, the most it may" % (server.uri, mine, obj.oid))


def _check_options(request):
    for number, _value in request.options:
        if number & 1 and number not in _UNDERSTOOD:
            raise Error(_BAD_OPTION, "critical option %d not supported" % number)


def _log_path(request):
    # The request's path for a log line, clipped, even when its Uri-Path is not UTF-8.
    try:
        return clip(request.path())
    except Error:
        return "(a path that is not UTF-8)"


def _response(code, cf, payload):
    msg = coap.Message(0, code)
    if code == _CREATED:
        msg.set_path(payload, _LOCATION_PATH)
    else:
        if cf is not None:
            msg.add(_CONTENT_FORMAT, cf)
        msg.payload = payload
    return msg
