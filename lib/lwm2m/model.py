# The object model: object definitions loaded from compact definition files, and the tree of
# object instances with their values and the application's read, write and execute hooks.
#
# A compact definition is JSON (what tools/ddf2json.py writes from OMA DDF XML):
#   {"id": 3303, "name": "Temperature", "ver": "1.1", "multiple": true, "mandatory": false,
#    "resources": [[5700, "Sensor Value", "f", "R", false, true], ...]}
# each resource being [id, name, type, operations, multiple, mandatory] with type one of
# s i u f b o t l c ("" for executables: String, Integer, Unsigned, Float, Boolean, Opaque,
# Time, Objlnk, Corelnk) and operations "R", "W", "RW", "E" or "". In RAM a resource is one
# small int of flags; names stay in the file.
from micropython import const

_TYPES = const(" siufbotlc")  # index of the type letter, 0 for none
_TYPE_MASK = const(0x0F)
_R = const(0x10)
_W = const(0x20)
_E = const(0x40)
_MULTIPLE = const(0x80)
_MANDATORY = const(0x100)


class DefinitionError(ValueError):
    pass


class Object:
    # One object: its definition (resources: {rid: flags}) and its instances {iid: Instance}.
    def __init__(self, oid, version, multiple, mandatory, resources):
        self.oid = oid
        self.version = version
        self.multiple = multiple
        self.mandatory = mandatory
        self.resources = resources
        self.instances = {}
        self.on_change = None  # set by the model: called with (oid, iid, rid)

    def rtype(self, rid):
        # The type letter of a resource, "" for an executable; KeyError when undefined.
        return _TYPES[self.resources[rid] & _TYPE_MASK].strip()

    def allows(self, rid, op):
        # op: "R", "W" or "E"
        return bool(self.resources[rid] & (_R if op == "R" else _W if op == "W" else _E))

    def is_multiple(self, rid):
        return bool(self.resources[rid] & _MULTIPLE)

    def mandatory_resources(self):
        return [rid for rid, flags in self.resources.items() if flags & _MANDATORY]


def _field(doc, key, kind, source, where=""):
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, kind):
        raise DefinitionError("%s: %s%s: expected %s" % (source, where, key, kind.__name__))
    return value


def parse_definition(doc, source):
    # An Object from a decoded compact definition; `source` names the file in errors.
    oid = _field(doc, "id", int, source)
    version = doc.get("ver", "1.0")
    if not isinstance(version, str):
        raise DefinitionError("%s: ver: expected a string like \"1.1\"" % source)
    resources = {}
    entries = _field(doc, "resources", list, source)
    for i, entry in enumerate(entries):
        where = "resources[%d]" % i
        if not isinstance(entry, list) or len(entry) != 6:
            raise DefinitionError("%s: %s: expected [id, name, type, operations, multiple, mandatory]" % (source, where))
        rid, _name, rtype, ops, multiple, mandatory = entry
        if not isinstance(rid, int) or not 0 <= rid <= 65535 or rid in resources:
            raise DefinitionError("%s: %s: expected a new resource id 0-65535, got %r" % (source, where, rid))
        if not isinstance(rtype, str) or len(rtype) > 1 or _TYPES.find(rtype or " ") < 0:
            raise DefinitionError("%s: %s: expected a type letter of siufbotlc or \"\", got %r" % (source, where, rtype))
        if ops not in ("R", "W", "RW", "E", ""):
            raise DefinitionError("%s: %s: expected operations R, W, RW, E or \"\", got %r" % (source, where, ops))
        flags = _TYPES.find(rtype or " ")
        flags |= (_R if "R" in ops else 0) | (_W if "W" in ops else 0) | (_E if ops == "E" else 0)
        flags |= (_MULTIPLE if multiple else 0) | (_MANDATORY if mandatory else 0)
        resources[rid] = flags
    return Object(oid, version, bool(doc.get("multiple")), bool(doc.get("mandatory")), resources)


def load_definition(path):
    import json

    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise DefinitionError("%s: cannot read: %s" % (path, exc))
    except ValueError:
        raise DefinitionError("%s: expected a JSON object definition" % path)
    return parse_definition(doc, path)


class Instance:
    # values: {rid: value} and {rid: {riid: value}} for multiple resources. hooks: {rid:
    # [read, write, execute, check]}, created only when the application binds one. creator:
    # the Short Server ID of the server that created it, None for the application's own.
    def __init__(self, obj, iid):
        self.obj = obj
        self.iid = iid
        self.values = {}
        self.hooks = None
        self.creator = None

    def _hook(self, rid, which, func):
        if rid not in self.obj.resources:
            raise KeyError("/%d/%d/%d is not defined" % (self.obj.oid, self.iid, rid))
        if self.hooks is None:
            self.hooks = {}
        self.hooks.setdefault(rid, [None, None, None, None])[which] = func

    def on_read(self, rid, func):
        # func() returns the current value: a sensor read on demand.
        self._hook(rid, 0, func)

    def on_write(self, rid, func, check=None):
        # func(value) acts on a value a server writes. check(value), when given, raises
        # ValueError to refuse it (4.00); a Write runs the checks of all its values before
        # any func, so a refused value leaves every other one unchanged too. func may still
        # raise ValueError to refuse, but by then the values before it have been applied.
        self._hook(rid, 1, func)
        if check:
            self._hook(rid, 3, check)

    def on_execute(self, rid, func):
        # func(arguments) runs an Execute; arguments is the payload as a str.
        self._hook(rid, 2, func)

    def hook(self, rid, which):
        hooks = self.hooks and self.hooks.get(rid)
        return hooks[which] if hooks else None

    def get(self, rid, riid=None):
        # The value the server reads: from the read hook when bound; KeyError when unset.
        reader = self.hook(rid, 0)
        value = reader() if reader else self.values[rid]
        return value if riid is None else value[riid]

    def has(self, rid):
        return rid in self.values or self.hook(rid, 0) is not None

    def set(self, rid, value, riid=None):
        # The application (or a server write) changes a value; observers hear of it.
        if rid not in self.obj.resources:
            raise KeyError("/%d/%d/%d is not defined" % (self.obj.oid, self.iid, rid))
        if riid is None:
            changed = self.values.get(rid) != value
            self.values[rid] = value
        else:
            items = self.values.setdefault(rid, {})
            changed = items.get(riid) != value
            items[riid] = value
        if changed and self.obj.on_change:
            self.obj.on_change(self.obj.oid, self.iid, rid)


class Model:
    # The objects a client serves: {oid: Object}.
    def __init__(self):
        self.objects = {}
        self.watchers = []  # called with (oid, iid, rid) when a value changes
        self.on_tree_change = None  # called when instances are created or deleted

    def define(self, obj):
        obj.on_change = self._changed
        self.objects[obj.oid] = obj
        return obj

    def _changed(self, oid, iid, rid):
        for watch in self.watchers:
            watch(oid, iid, rid)

    def object(self, oid):
        return self.objects.get(oid)

    def instance(self, oid, iid):
        obj = self.objects.get(oid)
        return obj.instances.get(iid) if obj else None

    def add_instance(self, oid, iid=None, values=None):
        # A new instance of a defined object, with the lowest free id unless one is given.
        obj = self.objects[oid]
        if iid is None:
            iid = 0
            while iid in obj.instances:
                iid += 1
        if iid in obj.instances or not 0 <= iid < 65535:
            raise ValueError("/%d/%d exists already or is out of range" % (oid, iid))
        if obj.instances and not obj.multiple:
            raise ValueError("object %d is single-instance" % oid)
        inst = obj.instances[iid] = Instance(obj, iid)
        for rid, value in (values or {}).items():
            inst.set(rid, value)
        if self.on_tree_change:
            self.on_tree_change()
        return inst

    def delete_instance(self, oid, iid):
        del self.objects[oid].instances[iid]
        if self.on_tree_change:
            self.on_tree_change()
