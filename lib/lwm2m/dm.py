# Device management and service enablement: Read, Write, Execute, Create, Delete, Discover
# on the object model, for the requests of one management server. Each function returns
# (code, content_format, payload) or raises lwm2m.Error with the code that answers it.
from micropython import const

from lwm2m import Error, formats, link
from lwm2m.text import isdec

_CREATED = const(0x41)
_DELETED = const(0x42)
_CHANGED = const(0x44)
_CONTENT = const(0x45)
_BAD_REQUEST = const(0x80)
_UNAUTHORIZED = const(0x81)
_NOT_FOUND = const(0x84)
_METHOD_NOT_ALLOWED = const(0x85)
_LINK_FORMAT = const(40)


def parse_path(segments):
    # Uri-Path segments -> a tuple of 0 to 4 ids; 4.04 for anything else.
    if len(segments) > 4:
        raise Error(_NOT_FOUND, "path deeper than a resource instance")
    ids = []
    for segment in segments:
        if not segment or len(segment) > 5 or not isdec(segment) or int(segment) > 65535:
            raise Error(_NOT_FOUND, "path segment %r is not an id" % segment)
        ids.append(int(segment))
    return tuple(ids)


def path_str(path):
    return "/" + "/".join(str(i) for i in path)


def _object(model, path):
    obj = model.object(path[0]) if path else None
    if obj is None:
        raise Error(_NOT_FOUND, "no object %s" % path_str(path[:1]))
    if obj.oid == 0:
        raise Error(_UNAUTHORIZED, "the Security object is for bootstrap servers only")
    return obj


def _instance(model, path):
    obj = _object(model, path)
    inst = obj.instances.get(path[1])
    if inst is None:
        raise Error(_NOT_FOUND, "no instance %s" % path_str(path[:2]))
    return obj, inst


def _defined(obj, path):
    # The resource id of path, 4.04 when the object does not define it.
    if path[2] not in obj.resources:
        raise Error(_NOT_FOUND, "no resource %s" % path_str(path[:3]))
    return path[2]


def _resource(model, path, op):
    obj, inst = _instance(model, path)
    rid = _defined(obj, path)
    if not obj.allows(rid, op):
        raise Error(_METHOD_NOT_ALLOWED, "%s is not %s" % (path_str(path[:3]), _OP_NAMES[op]))
    return obj, inst, rid


_OP_NAMES = {"R": "readable", "W": "writable", "E": "executable"}


def target_type(model, path):
    # The type letter of the resource a Write-Attributes names, None for an object or an
    # instance; 4.04 when the target does not exist.
    if len(path) == 1:
        _object(model, path)
        return None
    obj, _inst = _instance(model, path)
    return None if len(path) == 2 else obj.rtype(_defined(obj, path))


def _records_of(obj, inst, rid, out, riid=None):
    # Appends the records of one resource (every instance of a multiple one).
    value = inst.get(rid)
    rtype = obj.rtype(rid)
    base = (obj.oid, inst.iid, rid)
    if obj.is_multiple(rid):
        for i in sorted(value):
            if riid is None or i == riid:
                out.append((base + (i,), rtype, value[i]))
    else:
        out.append((base, rtype, value))


def read_records(model, path):
    # The records a Read of `path` gives.
    out = []
    if len(path) >= 3:
        obj, inst, rid = _resource(model, path, "R")
        if not inst.has(rid):
            raise Error(_NOT_FOUND, "%s has no value" % path_str(path))
        _records_of(obj, inst, rid, out, path[3] if len(path) == 4 else None)
        if not out:
            raise Error(_NOT_FOUND, "no resource instance %s" % path_str(path))
        return out
    if len(path) == 2:
        obj, inst = _instance(model, path)
        instances = (inst,)
    else:
        obj = _object(model, path)
        instances = [obj.instances[iid] for iid in sorted(obj.instances)]
    for inst in instances:
        for rid in sorted(obj.resources):
            if obj.allows(rid, "R") and inst.has(rid):
                _records_of(obj, inst, rid, out)
    return out


def read(model, path, accept):
    records = read_records(model, path)
    single = len(path) == 4 or (len(path) == 3 and not model.object(path[0]).is_multiple(path[2]))
    cf = formats.default_format(path, single) if accept is None else accept
    return _CONTENT, cf, formats.encode(cf, path, records)


def _rtype_of(model, base):
    # The rtype_of callable formats.decode needs for a Write or Create under `base`.
    def rtype_of(path):
        if path[:len(base)] != base[:len(path)] or len(path) < 3:
            raise Error(_BAD_REQUEST, "%s is outside %s" % (path_str(path), path_str(base)))
        obj = model.object(path[0])
        if obj is None or path[2] not in obj.resources:
            raise Error(_NOT_FOUND, "no resource %s" % path_str(path[:3]))
        return obj.rtype(path[2])

    return rtype_of


def write(model, path, cf, payload, replace):
    # Write (PUT: replace) or partial update (POST) of an instance, a resource or a resource
    # instance. Every resource is checked before any is changed.
    if len(path) < 2:
        raise Error(_METHOD_NOT_ALLOWED, "Write needs an instance or a resource")
    obj, inst = _instance(model, path)
    if len(path) == 2 and not replace and cf is None:
        raise Error(_BAD_REQUEST, "no payload")
    records = formats.decode(cf, path, payload, _rtype_of(model, path))
    updates = {}
    for rpath, _rtype, value in records:
        rid = rpath[2]
        if not obj.allows(rid, "W"):
            raise Error(_METHOD_NOT_ALLOWED, "%s is not writable" % path_str(rpath[:3]))
        if obj.is_multiple(rid):
            if len(rpath) != 4:
                raise Error(_BAD_REQUEST, "%s is multiple: write its instances" % path_str(rpath))
            updates.setdefault(rid, {})[rpath[3]] = value
        elif len(rpath) == 4:
            raise Error(_BAD_REQUEST, "%s is a single resource" % path_str(rpath[:3]))
        else:
            updates[rid] = value
    for rid, value in updates.items():
        if obj.is_multiple(rid) and not (replace or len(path) == 2) and inst.has(rid):
            merged = dict(inst.get(rid))
            merged.update(value)
            value = merged
        _apply(inst, rid, value)
    return _CHANGED, None, b""


def _apply(inst, rid, value):
    writer = inst.hook(rid, 1)
    if writer:
        try:
            writer(value)
        except ValueError as exc:
            raise Error(_BAD_REQUEST, "refused: %s" % exc)
    inst.set(rid, value)


def execute(model, path, payload):
    if len(path) != 3:
        raise Error(_METHOD_NOT_ALLOWED, "Execute needs a resource")
    _obj, inst, rid = _resource(model, path, "E")
    handler = inst.hook(rid, 2)
    if handler is None:
        raise Error(_METHOD_NOT_ALLOWED, "%s has no handler" % path_str(path))
    try:
        arguments = str(payload, "utf-8")
    except UnicodeError:
        raise Error(_BAD_REQUEST, "arguments are not UTF-8")
    handler(arguments)
    return _CHANGED, None, b""


def create(model, path, cf, payload):
    # Create an instance of the object at `path`; answers 2.01 with the new instance's path.
    if len(path) != 1:
        raise Error(_METHOD_NOT_ALLOWED, "Create needs an object")
    obj = _object(model, path)
    try:
        records = formats.decode(cf, path, payload, _rtype_of(model, path))
    except Error:
        # 1.0 servers may send the resources bare, without an Object Instance around them.
        iid = _free_iid(obj)
        records = formats.decode(cf, path + (iid,), payload, _rtype_of(model, path + (iid,)))
    iids = set(rpath[1] for rpath, _t, _v in records)
    if len(iids) > 1:
        raise Error(_BAD_REQUEST, "Create of more than one instance")
    iid = iids.pop() if iids else _free_iid(obj)
    if iid in obj.instances:
        raise Error(_BAD_REQUEST, "instance %s exists" % path_str((obj.oid, iid)))
    if obj.instances and not obj.multiple:
        raise Error(_BAD_REQUEST, "object %d is single-instance" % obj.oid)
    inst = model.add_instance(obj.oid, iid)
    for rpath, _rtype, value in records:
        if len(rpath) == 4:
            inst.set(rpath[2], value, rpath[3])
        else:
            inst.set(rpath[2], value)
    return _CREATED, None, path_str((obj.oid, iid))


def _free_iid(obj):
    iid = 0
    while iid in obj.instances:
        iid += 1
    return iid


def delete(model, path):
    if len(path) != 2:
        raise Error(_METHOD_NOT_ALLOWED, "Delete needs an instance")
    _instance(model, path)
    model.delete_instance(path[0], path[1])
    return _DELETED, None, b""


def discover(model, path, attributes_of):
    # The link-format Discover answer: the target with its attributes, then what is below it.
    # attributes_of(path) -> [(name, value)] of the Write-Attributes set on that path.
    if len(path) > 3:
        raise Error(_METHOD_NOT_ALLOWED, "Discover of a resource instance")
    obj = _object(model, path)
    links = []
    if len(path) == 1:
        attrs = attributes_of(path)
        if obj.version != "1.0":
            attrs = [("ver", obj.version.encode())] + attrs
        links.append((path_str(path), attrs))
        for iid in sorted(obj.instances):
            links.append((path_str((obj.oid, iid)), attributes_of((obj.oid, iid))))
            _resource_links(obj, obj.instances[iid], links, attributes_of, False)
    elif len(path) == 2:
        _obj, inst = _instance(model, path)
        links.append((path_str(path), attributes_of(path)))
        _resource_links(obj, inst, links, attributes_of, True)
    else:
        _obj, inst = _instance(model, path)
        _resource_links(obj, inst, links, attributes_of, True, _defined(obj, path))
    return _CONTENT, _LINK_FORMAT, link.encode(links).encode()


def _resource_links(obj, inst, links, attributes_of, with_attrs, only=None):
    for rid in sorted(obj.resources):
        if only is not None and rid != only:
            continue
        if not inst.has(rid) and not obj.allows(rid, "E"):
            continue
        rpath = (obj.oid, inst.iid, rid)
        attrs = attributes_of(rpath) if with_attrs else []
        if obj.is_multiple(rid) and inst.has(rid):
            attrs = [("dim", len(inst.get(rid)))] + attrs
        links.append((path_str(rpath), attrs))
