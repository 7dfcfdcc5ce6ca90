# Device management and service enablement: Read, Write, Execute, Create, Delete, Discover
# on the object model, for the requests of one management server. Each function returns
# (code, content_format, payload) or raises lwm2m.Error with the code that answers it.
#
# Every format is checked against the model the same way: a value for an executable
# resource is 4.05, a resource given as one value where it is multiple (or the reverse) is
# 4.00, and a Write or Create changes nothing unless every value, and every application
# check (Instance.on_write's check), accepts it.
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
_TEXT = const(0)
_OLD_TEXT = const(1541)
_DEVICE = const(3)
_RESERVED_IID = const(65535)


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


_PATH_FORMATS = ("/", "/%d", "/%d/%d", "/%d/%d/%d", "/%d/%d/%d/%d")


def path_str(path):
    # "/3/0/1": one string made, no generator or list.
    return _PATH_FORMATS[len(path)] % tuple(path)


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


def _present(obj, inst, path):
    # The resource id of a path to a resource or a resource instance that exists: defined,
    # and holding a value (or executable); a resource instance only of a multiple resource.
    rid = path[2]
    if rid not in obj.resources or not (inst.has(rid) or obj.allows(rid, "E")):
        raise Error(_NOT_FOUND, "no resource %s" % path_str(path[:3]))
    if len(path) == 4 and not (obj.is_multiple(rid) and inst.has(rid) and path[3] in inst.get(rid)):
        raise Error(_NOT_FOUND, "no resource instance %s" % path_str(path))
    return rid


def _defined(obj, path):
    # The resource id of path, 4.04 when the object does not define it.
    if path[2] not in obj.resources:
        raise Error(_NOT_FOUND, "no resource %s" % path_str(path[:3]))
    return path[2]


def target_type(model, path):
    # The type letter of the resource a Write-Attributes names, None for an object or an
    # instance; 4.04 when the target does not exist.
    if len(path) < 2:
        _object(model, path)
        return None
    obj, inst = _instance(model, path)
    return None if len(path) == 2 else obj.rtype(_present(obj, inst, path))


def _records_of(obj, inst, rid, add, riid=None):
    # The records of one resource (every instance of a multiple one), to add(path, rtype, value).
    value = inst.get(rid)
    rtype = obj.rtype(rid)
    base = (obj.oid, inst.iid, rid)
    if obj.is_multiple(rid):
        for i in sorted(value):
            if riid is None or i == riid:
                add(base + (i,), rtype, value[i])
    else:
        add(base, rtype, value)


def read_into(add, model, path, visible=None):
    # Gives add(path, rtype, value) each record a Read of `path` gives, in path order; of an
    # object, only the instances visible(instance) allows when given (those the server may
    # read).
    if len(path) >= 3:
        obj, inst = _instance(model, path)
        rid = _present(obj, inst, path)
        if not obj.allows(rid, "R"):
            raise Error(_METHOD_NOT_ALLOWED, "%s is not readable" % path_str(path[:3]))
        _records_of(obj, inst, rid, add, path[3] if len(path) == 4 else None)
        return
    if len(path) == 2:
        obj, inst = _instance(model, path)
        instances = (inst,)
    else:
        obj = _object(model, path)
        instances = _instances(obj, visible)
    for inst in instances:
        for rid in sorted(obj.resources):
            if obj.allows(rid, "R") and inst.has(rid):
                _records_of(obj, inst, rid, add)


def read_records(model, path, visible=None):
    # The records of a Read of `path`, as a list (read_into says which).
    out = []
    read_into(lambda *record: out.append(record), model, path, visible)
    return out


def _instances(obj, visible):
    return [obj.instances[iid] for iid in sorted(obj.instances) if visible is None or visible(obj.instances[iid])]


def read(model, path, accept, visible=None):
    # The answer to a Read, written as the model is walked (no list of records).
    cf = formats.default_format(path, _single(model, path)) if accept is None else accept
    w = formats.writer(cf, path)
    read_into(w.add, model, path, visible)
    return _CONTENT, cf, w.end()


def _single(model, path):
    # Does a Read of path give one value: a resource instance, or a resource that is not
    # multiple? (Of a path that does not exist, the Read fails anyway.)
    if len(path) != 3:
        return len(path) == 4
    obj = model.object(path[0])
    return obj is not None and path[2] in obj.resources and not obj.is_multiple(path[2])


def rtype_of(model, base):
    # The rtype_of callable formats.decode needs for a Write or Create under `base`.
    def rtype(path):
        if path[:len(base)] != base[:len(path)] or len(path) < 3:
            raise Error(_BAD_REQUEST, "%s is outside %s" % (path_str(path), path_str(base)))
        obj = model.object(path[0])
        if obj is None or path[2] not in obj.resources:
            raise Error(_NOT_FOUND, "no resource %s" % path_str(path[:3]))
        if obj.allows(path[2], "E"):
            raise Error(_METHOD_NOT_ALLOWED, "%s is executable: it takes no value" % path_str(path[:3]))
        return obj.rtype(path[2])

    return rtype


def values_of(obj, records, writable):
    # {rid: value, or {riid: value} for a multiple resource} from decoded records, each
    # checked against the object: a multiple resource by its instances, a single one as one
    # value, and (when `writable`) only resources a server may write.
    updates = {}
    for rpath, _rtype, value in records:
        rid = rpath[2]
        if writable and not obj.allows(rid, "W"):
            raise Error(_METHOD_NOT_ALLOWED, "%s is not writable" % path_str(rpath[:3]))
        if obj.is_multiple(rid):
            if len(rpath) != 4:
                raise Error(_BAD_REQUEST, "%s is multiple: give its instances" % path_str(rpath))
            updates.setdefault(rid, {})[rpath[3]] = value
        elif len(rpath) == 4:
            raise Error(_BAD_REQUEST, "%s is a single resource" % path_str(rpath[:3]))
        else:
            updates[rid] = value
    return updates


def write(model, path, cf, payload, replace):
    # Write (PUT: replace) or partial update (POST) of an instance, a resource or a resource
    # instance. Every resource is checked before any is changed.
    if len(path) < 2:
        raise Error(_METHOD_NOT_ALLOWED, "Write needs an instance or a resource")
    obj, inst = _instance(model, path)
    if len(path) > 2:
        rid = _defined(obj, path)
        if len(path) == 4 and not obj.is_multiple(rid):
            raise Error(_NOT_FOUND, "%s is a single resource: it has no instances" % path_str(path[:3]))
    if len(path) == 2 and not replace and cf is None:
        raise Error(_BAD_REQUEST, "no payload")
    updates = values_of(obj, formats.decode(cf, path, payload, rtype_of(model, path)), True)
    for rid, value in updates.items():
        # A resource instance is written alone, and a partial update of a multiple resource
        # adds to it; a replace of the resource, or a Write of the instance, sets it whole.
        if obj.is_multiple(rid) and inst.has(rid) and (len(path) == 4 or (len(path) == 3 and not replace)):
            merged = dict(inst.get(rid))
            merged.update(value)
            updates[rid] = merged
    check(inst, updates)
    apply(inst, updates)
    return _CHANGED, None, b""


def write_composite(model, records, allow):
    # Write-Composite (iPATCH): the resources and resource instances of several instances,
    # all or nothing: every instance is found, every value checked (allow(path) raises for
    # a resource the server may not write) before any changes. A resource instance is
    # written alone, a resource whole.
    plans = []
    groups = {}
    for record in records:
        groups.setdefault(record[0][:2], []).append(record)
    for ipath in sorted(groups):
        obj, inst = _instance(model, ipath)
        for path, _rtype, _value in groups[ipath]:
            allow(path[:3])
        updates = values_of(obj, groups[ipath], True)
        for rid, value in updates.items():
            if obj.is_multiple(rid) and inst.has(rid):
                merged = dict(inst.get(rid))
                merged.update(value)
                updates[rid] = merged
        check(inst, updates)
        plans.append((inst, updates))
    for inst, updates in plans:
        apply(inst, updates)
    return _CHANGED, None, b""


def check(inst, updates):
    # Runs the application's checks of every value: called before apply(), so that a refused
    # value leaves everything as it was.
    for rid, value in updates.items():
        _refused(inst.hook(rid, 3), value)


def apply(inst, updates):
    # Sets checked values, each through the application's write hook when it has one.
    for rid, value in updates.items():
        _refused(inst.hook(rid, 1), value)
        inst.set(rid, value)


def _refused(hook, value):
    # Runs an application check or write hook; its ValueError refuses the value with 4.00.
    if hook:
        try:
            hook(value)
        except ValueError as exc:
            raise Error(_BAD_REQUEST, "refused: %s" % exc)


def execute(model, path, cf, payload):
    if len(path) != 3:
        raise Error(_METHOD_NOT_ALLOWED, "Execute needs a resource")
    obj, inst = _instance(model, path)
    rid = _defined(obj, path)
    if not obj.allows(rid, "E"):
        raise Error(_METHOD_NOT_ALLOWED, "%s is not executable" % path_str(path))
    handler = inst.hook(rid, 2)
    if handler is None:
        raise Error(_METHOD_NOT_ALLOWED, "%s has no handler" % path_str(path))
    if cf is not None and cf != _TEXT and cf != _OLD_TEXT:
        raise Error(_BAD_REQUEST, "Execute takes text arguments, not content format %d" % cf)
    handler(arguments(payload))
    return _CHANGED, None, b""


def arguments(payload):
    # The Execute payload as a str, checked against the grammar of TS Core 5.4.5: arguments
    # separated by ",", each a digit with an optional ='value' (printable ASCII but ' and ").
    try:
        text = str(payload, "ascii")
    except UnicodeError:
        _bad_arguments(payload)
    i = 0
    n = len(text)
    while i < n:
        if not "0" <= text[i] <= "9":
            _bad_arguments(text)
        i += 1
        if text[i:i + 2] == "='":
            end = text.find("'", i + 2)
            if end < 0:
                _bad_arguments(text)
            for c in text[i + 2:end]:
                if c < " " or c > "~" or c == '"':
                    _bad_arguments(text)
            i = end + 1
        if i < n:
            if text[i] != "," or i + 1 == n:
                _bad_arguments(text)
            i += 1
    return text


def _bad_arguments(text):
    raise Error(_BAD_REQUEST, "Execute arguments: expected digit[='value'] separated by ',', got %r" % (text,))


def create(model, path, cf, payload, creator=None, admit=None):
    # Create an instance of the object at `path`; answers 2.01 with the new instance's path.
    # admit(obj, iid), when given, raises lwm2m.Error to refuse it before anything changes;
    # the new instance's `creator` is the Short Server ID of the server that asked.
    if len(path) != 1:
        raise Error(_METHOD_NOT_ALLOWED, "Create needs an object")
    obj = _object(model, path)
    try:
        records = formats.decode(cf, path, payload, rtype_of(model, path))
    except Error as exc:
        if exc.code != _BAD_REQUEST:
            raise
        # 1.0 servers may send the resources bare, without an Object Instance around them.
        iid = _free_iid(obj)
        records = formats.decode(cf, path + (iid,), payload, rtype_of(model, path + (iid,)))
    iids = set(rpath[1] for rpath, _t, _v in records)
    if len(iids) > 1:
        raise Error(_BAD_REQUEST, "Create of more than one instance")
    iid = iids.pop() if iids else _free_iid(obj)
    if iid == _RESERVED_IID:
        raise Error(_BAD_REQUEST, "instance id 65535 is reserved")
    if iid in obj.instances:
        raise Error(_BAD_REQUEST, "instance %s exists" % path_str((obj.oid, iid)))
    if obj.instances and not obj.multiple:
        raise Error(_BAD_REQUEST, "object %d is single-instance" % obj.oid)
    values = values_of(obj, records, False)
    if admit:
        admit(obj, iid)
    model.add_instance(obj.oid, iid, values).creator = creator
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
    if path[0] == _DEVICE:
        raise Error(_METHOD_NOT_ALLOWED, "the Device instance cannot be deleted")
    model.delete_instance(path[0], path[1])
    return _DELETED, None, b""


def discover(model, path, attributes_of, visible=None):
    # The link-format Discover answer: the target with its attributes, then what is below it,
    # written as the model is walked. attributes_of(path) -> [(name, value)] of the
    # Write-Attributes set on that path; of an object, only the instances visible(instance)
    # allows when given.
    obj = _object(model, path)
    w = link.Writer()
    if len(path) == 1:
        w.link(path)
        if obj.version != "1.0":
            w.attr("ver", obj.version.encode())
        _attrs(w, attributes_of(path))
        for inst in _instances(obj, visible):
            ipath = (obj.oid, inst.iid)
            w.link(ipath)
            _attrs(w, attributes_of(ipath))
            _resource_links(w, obj, inst, None)
        return _CONTENT, _LINK_FORMAT, w.end()
    _obj, inst = _instance(model, path)
    if len(path) == 2:
        w.link(path)
        _attrs(w, attributes_of(path))
        _resource_links(w, obj, inst, attributes_of)
    else:
        rid = _present(obj, inst, path)
        if len(path) == 4:
            raise Error(_METHOD_NOT_ALLOWED, "Discover of a resource instance")
        _resource_links(w, obj, inst, attributes_of, rid)
    return _CONTENT, _LINK_FORMAT, w.end()


def _attrs(w, attrs):
    for name, value in attrs:
        w.attr(name, value)


def _resource_links(w, obj, inst, attributes_of, only=None):
    # The links of an instance's resources, with their attributes when attributes_of is given
    # (an object's Discover lists resources bare, but for dim).
    for rid in sorted(obj.resources):
        if only is not None and rid != only:
            continue
        if not inst.has(rid) and not obj.allows(rid, "E"):
            continue
        rpath = (obj.oid, inst.iid, rid)
        w.link(rpath)
        if obj.is_multiple(rid) and inst.has(rid):
            w.attr("dim", len(inst.get(rid)))
        if attributes_of is not None:
            _attrs(w, attributes_of(rpath))
