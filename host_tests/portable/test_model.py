# The object model: compact definitions, their errors, instances and hooks.
from check import raises
from fakes import objects_dir
from lwm2m.model import DefinitionError, Model, load_definition, parse_definition

LIGHT = {"id": 3311, "ver": "1.0", "multiple": True, "mandatory": False, "resources": [
    [5850, "On/Off", "b", "RW", False, True],
    [5851, "Dimmer", "i", "RW", False, False],
    [5750, "Application Type", "s", "RW", False, False],
    [5805, "Cumulative active power", "f", "R", False, False],
    [5706, "Colour", "s", "RW", False, False],
    [4, "Pulse", "", "E", False, False],
    [7, "Levels", "i", "R", True, False],
]}


def test_definition_flags():
    obj = parse_definition(LIGHT, "3311.json")
    assert (obj.oid, obj.version, obj.multiple, obj.mandatory) == (3311, "1.0", True, False)
    assert obj.rtype(5850) == "b" and obj.rtype(5805) == "f" and obj.rtype(4) == ""
    assert obj.allows(5850, "R") and obj.allows(5850, "W") and not obj.allows(5850, "E")
    assert obj.allows(5805, "R") and not obj.allows(5805, "W")
    assert obj.allows(4, "E") and not obj.allows(4, "R")
    assert obj.is_multiple(7) and not obj.is_multiple(5850)
    assert obj.mandatory_resources() == [5850]


def test_definition_errors_name_the_file_and_field():
    cases = (
        ({"resources": []}, "3311.json: id: expected int"),
        ({"id": 1}, "3311.json: resources: expected list"),
        ({"id": 1, "ver": 1.1, "resources": []}, "3311.json: ver: expected a string"),
        ({"id": 1, "resources": [[1, "a", "s", "R", False]]}, "3311.json: resources[0]: expected [id, name"),
        ({"id": 1, "resources": [[1, "a", "x", "R", False, False]]}, "3311.json: resources[0]: expected a type letter"),
        ({"id": 1, "resources": [[1, "a", "s", "RWX", False, False]]}, "3311.json: resources[0]: expected operations"),
        ({"id": 1, "resources": [[1, "a", "s", "R", 0, 0], [1, "b", "s", "R", 0, 0]]},
         "3311.json: resources[1]: expected a new resource id"),
        ({"id": 1, "resources": [[70000, "a", "s", "R", 0, 0]]}, "3311.json: resources[0]: expected a new resource id"),
    )
    for doc, message in cases:
        err = raises(DefinitionError, parse_definition, doc, "3311.json")
        assert str(err).startswith(message), str(err)


def test_load_definition_errors():
    assert "cannot read" in str(raises(DefinitionError, load_definition, "/no/such/3.json"))


def test_shipped_core_definitions_load():
    folder = objects_dir()
    for oid in (0, 1, 3, 4, 3303, 3311):
        obj = load_definition("%s/%d.json" % (folder, oid))
        assert obj.oid == oid and obj.resources


def test_instances_hooks_and_change_notes():
    model = Model()
    model.define(parse_definition(LIGHT, "3311.json"))
    changes = []
    trees = []
    model.watchers.append(lambda *path: changes.append(path))
    model.on_tree_change = lambda: trees.append(1)
    lamp = model.add_instance(3311, values={5850: False})
    assert lamp.iid == 0 and model.add_instance(3311).iid == 1 and len(trees) == 2
    lamp.set(5850, True)
    lamp.set(5850, True)  # unchanged: no note
    lamp.set(7, 3, 0)
    assert changes == [(3311, 0, 5850), (3311, 0, 5850), (3311, 0, 7)]
    assert lamp.get(7) == {0: 3} and lamp.get(7, 0) == 3
    lamp.on_read(5805, lambda: 12.5)
    assert lamp.has(5805) and lamp.get(5805) == 12.5 and not lamp.has(5851)
    raises(KeyError, lamp.get, 5851)
    raises(KeyError, lamp.set, 9999, 1)
    raises(KeyError, lamp.on_write, 9999, print)
    raises(ValueError, model.add_instance, 3311, 0)
    model.delete_instance(3311, 1)
    assert model.instance(3311, 1) is None and len(trees) == 3
