# Access Control (TS Core 1.1 7.3.2 and the Access Control object, 2): what one management
# server may do to an object instance, from the ACL instance naming it (/2/x/0 Object ID,
# /2/x/1 Object Instance ID, /2/x/2 the ACL keyed by Short Server ID, /2/x/3 its Access
# Control Owner). The client asks allow() before each operation once it has several
# management servers; with one, ACLs are not needed and everything is allowed.
#
# The rules:
# - The Access Control Owner has every right; another server has its own ACL entry, or else
#   the default entry (Short Server ID 0), or else none.
# - An instance without an ACL instance is its owner's alone: the server that created it.
#   The client's own instances (Device, the sensors) have no owner, so without an ACL
#   instance no server may touch them.
# - Create needs the Create bit of the object's ACL instance (Object Instance ID 65535).
# - An ACL instance is the bootstrap server's to write: a management server may read or
#   write one only when it is its Access Control Owner, and may neither create nor delete
#   one (ALL but Create and Delete for the owner).
from micropython import const

from lwm2m import Error, dm

READ = const(1)  # also Observe, Discover and Write-Attributes
WRITE = const(2)
EXECUTE = const(4)
DELETE = const(8)
CREATE = const(16)
_ALL = const(31)
_ACL = const(2)
_SERVER = const(1)
_UNAUTHORIZED = const(0x81)
OBJECT_LEVEL = const(65535)
_NAMES = {READ: "Read", WRITE: "Write", EXECUTE: "Execute", DELETE: "Delete", CREATE: "Create"}


def acl_of(model, oid, iid):
    # The ACL instance for /oid/iid, or None.
    acls = model.object(_ACL)
    for inst in acls.instances.values() if acls else ():
        if inst.has(0) and inst.has(1) and inst.get(0) == oid and inst.get(1) == iid:
            return inst
    return None


def rights(model, ssid, oid, iid):
    # The bits (READ | WRITE ...) server ssid holds on /oid/iid; iid OBJECT_LEVEL for Create.
    if oid == _ACL:
        acl = model.instance(_ACL, iid)
        owner = acl.get(3) if acl is not None and acl.has(3) else None
        return READ | WRITE if owner == ssid else 0
    acl = acl_of(model, oid, iid)
    if acl is None:
        inst = model.instance(oid, iid)
        return _ALL if inst is not None and inst.creator == ssid else 0
    if acl.has(3) and acl.get(3) == ssid:
        return _ALL
    entries = acl.get(2) if acl.has(2) else {}
    return entries.get(ssid, entries.get(0, 0))


def allow(model, server, bit, path):
    # 4.01 unless `server` (a lwm2m.registration.Server) holds `bit` on the instance of path,
    # or for Create on its object; an object-level Read, Observe or Discover shows only what
    # it may read (visible()), and what does not exist is left for dm to answer 4.04.
    if not path or path[0] == 0:
        return
    if len(path) == 1:
        if bit != CREATE:
            return
        iid = OBJECT_LEVEL
    else:
        iid = path[1]
        if model.instance(path[0], iid) is None:
            return
    if not _server_rights(model, server, path[0], iid) & bit:
        raise Error(_UNAUTHORIZED, "%s has no %s right on %s" % (server.uri, _NAMES[bit], dm.path_str((path[0], iid))))


def visible(model, server):
    # What an object-level Read or Discover of `server` lists: the instances it may read.
    return lambda inst: _server_rights(model, server, inst.obj.oid, inst.iid) & READ


def _server_rights(model, server, oid, iid):
    # A server has Read, Write and Execute on its own Server instance, whatever the ACLs.
    if oid == _SERVER and iid == server.instance.iid:
        return READ | WRITE | EXECUTE
    return rights(model, server.ssid, oid, iid)


def created(model, ssid, oid, iid):
    # A server created /oid/iid: it owns a new ACL instance for it, with no entries.
    if model.object(_ACL) is not None:
        model.add_instance(_ACL, None, {0: oid, 1: iid, 3: ssid})


def deleted(model, oid, iid):
    # /oid/iid is gone: so is its ACL instance.
    acl = acl_of(model, oid, iid)
    if acl is not None:
        model.delete_instance(_ACL, acl.iid)
