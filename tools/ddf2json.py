# Object definition compiler: OMA DDF XML (LwM2M 1.0 and 1.1 schemas) to the compact JSON
# definition the device loads (see lib/lwm2m/model.py for the format).
# Usage: python3 tools/ddf2json.py FILE.xml [...] -o DIR   (writes DIR/<object id>.json)
import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

TYPES = {"String": "s", "Integer": "i", "Unsigned Integer": "u", "Float": "f", "Boolean": "b",
         "Opaque": "o", "Time": "t", "Objlnk": "l", "Corelnk": "c", "": ""}
OPERATIONS = ("R", "W", "RW", "E", "")


class DdfError(ValueError):
    pass


def _text(element, tag, source, where, choices=None):
    child = element.find(tag)
    if child is None:
        raise DdfError("%s: %s: missing <%s>" % (source, where, tag))
    value = (child.text or "").strip()
    if choices is not None and value not in choices:
        raise DdfError("%s: %s <%s>: expected one of %s, got %r" % (source, where, tag, ", ".join(repr(c) for c in choices), value))
    return value


def _int(text, source, where):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise DdfError("%s: %s: expected an id 0-65535, got %r" % (source, where, text))
    return value


def _near(xml_text, position):
    # The markup around a parser error position (line from 1, column from 0): ' at <x>'.
    if isinstance(xml_text, bytes):
        xml_text = xml_text.decode("utf-8", "replace")
    line, column = position
    lines = xml_text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    start = text.rfind("<", 0, column + 1)
    if start < 0:
        return ""
    end = text.find(">", start)
    return " at %r" % text[start:end + 1 if end >= 0 else len(text)].strip()


def compile_ddf(xml_text, source):
    # The compact definition (a dict) of the one object in a DDF document.
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DdfError("%s: malformed XML: %s%s" % (source, exc, _near(xml_text, exc.position)))
    objects = root.findall("Object")
    if root.tag != "LWM2M" or len(objects) != 1:
        raise DdfError("%s: expected <LWM2M> holding one <Object>" % source)
    obj = objects[0]
    oid = _int(_text(obj, "ObjectID", source, "<Object>"), source, "<ObjectID>")
    version = obj.findtext("ObjectVersion", "").strip() or "1.0"
    where = "<Object> %d" % oid
    name = _text(obj, "Name", source, where)
    multiple = _text(obj, "MultipleInstances", source, where, ("Multiple", "Single")) == "Multiple"
    mandatory = _text(obj, "Mandatory", source, where, ("Mandatory", "Optional")) == "Mandatory"
    items = obj.findall("Resources/Item")
    resources = []
    seen = set()
    for item in items:
        rid = _int(item.get("ID", ""), source, '<Item ID="%s">' % item.get("ID", ""))
        where = '<Item ID="%d">' % rid
        if rid in seen:
            raise DdfError("%s: %s: duplicate resource id" % (source, where))
        seen.add(rid)
        rtype = _text(item, "Type", source, where, tuple(TYPES))
        operations = _text(item, "Operations", source, where, OPERATIONS)
        if not rtype and operations not in ("E", ""):
            raise DdfError("%s: %s <Type>: empty, but a resource with operations %r needs a type" % (source, where, operations))
        resources.append([
            rid,
            _text(item, "Name", source, where),
            TYPES[rtype],
            operations,
            _text(item, "MultipleInstances", source, where, ("Multiple", "Single")) == "Multiple",
            _text(item, "Mandatory", source, where, ("Mandatory", "Optional")) == "Mandatory",
        ])
    return {"id": oid, "name": name, "ver": version,
            "multiple": multiple, "mandatory": mandatory, "resources": resources}


def dumps(definition):
    # One resource a line: small enough for a board, readable in a diff.
    head = json.dumps({k: v for k, v in definition.items() if k != "resources"})[:-1]
    rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in definition["resources"])
    return '%s, "resources": [\n%s\n]}\n' % (head, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ddf", nargs="+", type=Path, help="OMA DDF XML files")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for <id>.json")
    args = parser.parse_args(argv)
    # Everything is compiled before anything is written, so a bad file leaves the folder as
    # it was; two files defining one object id would overwrite each other, so that is refused.
    compiled = {}
    for path in args.ddf:
        try:
            definition = compile_ddf(path.read_bytes(), str(path))
        except DdfError as exc:
            print("ddf2json: %s" % exc, file=sys.stderr)
            return 1
        except OSError as exc:
            print("ddf2json: %s: cannot read: %s" % (path, exc.strerror or exc), file=sys.stderr)
            return 1
        first = compiled.get(definition["id"])
        if first is not None:
            print("ddf2json: %s: <ObjectID> %d: already defined by %s" % (path, definition["id"], first[0]), file=sys.stderr)
            return 1
        compiled[definition["id"]] = (path, definition)
    args.out.mkdir(parents=True, exist_ok=True)
    for path, definition in compiled.values():
        target = args.out / ("%d.json" % definition["id"])
        target.write_text(dumps(definition), encoding="utf-8")
        print("%s -> %s (%d resources)" % (path, target, len(definition["resources"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
