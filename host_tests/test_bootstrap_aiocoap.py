# Bootstrap with a scripted aiocoap bootstrap server (peers/coap_server.py), for what Leshan's
# bootstrap server cannot be made to send: a Finish of an inconsistent configuration, the
# exact bytes of a Bootstrap-Discover, and a Bootstrap-Delete of / that keeps the bootstrap
# account. The client is tools/host_run.py --bootstrap on real UDP. (A bootstrap that never
# finishes takes 247 s to give up: host_tests/portable/test_bootstrap.py checks it on a
# virtual clock.)
import os

import pytest
from aiocoap.numbers.codes import Code

from peers.coap_server import CoapServer, query_of
from peers.host import HostRuns, free_udp_port

LINK, SENML_JSON = 40, 110


@pytest.fixture
def bootstrapping():
    # (the server, the client's run, its Bootstrap-Request)
    server = CoapServer(free_udp_port())
    runs = HostRuns()
    try:
        run = runs.start(None, "bs-aiocoap-%d" % os.getpid(), 300,
                         extra=["--bootstrap", "coap://127.0.0.1:%d" % server.port])
        requests = server.wait(lambda: server.root.bootstrap_requests, 10)
        assert requests, run.dump()
        yield server, run, requests[0]
    finally:
        runs.close_all()
        server.close()


def test_the_request_and_the_discover_bytes(bootstrapping):
    server, _run, first = bootstrapping
    assert query_of(first) == {"ep": "bs-aiocoap-%d" % os.getpid(), "pct": "11542"}
    answer = server.send(first, Code.GET, "/", accept=LINK)
    assert answer.code == Code.CONTENT and answer.opt.content_format == LINK
    assert answer.payload == (b'</>;lwm2m=1.1,</0>;ver=1.1,</0/0>;uri="coap://127.0.0.1:%d",</1>;ver=1.1,'
                              b"</2>;ver=1.1,</3>;ver=1.1,</3/0>,</4/0>,</5>,</3303>;ver=1.1,</3303/0>,</3311/0>"
                              % server.port)
    answer = server.send(first, Code.GET, "/0", accept=LINK)
    assert answer.payload == b'</>;lwm2m=1.1,</0>;ver=1.1,</0/0>;uri="coap://127.0.0.1:%d"' % server.port


def test_an_inconsistent_finish_is_refused_and_the_bootstrap_tried_again(bootstrapping):
    server, run, first = bootstrapping
    server_instance = b'[{"bn":"/1/0/","n":"0","v":101},{"n":"1","v":60},{"n":"6","vb":false},{"n":"7","vs":"U"}]'
    assert server.send(first, Code.PUT, "/1/0", server_instance, content_format=SENML_JSON).code == Code.CHANGED
    answer = server.send(first, Code.POST, "/bs")
    assert answer.code == Code.NOT_ACCEPTABLE
    assert answer.payload == b"/1/0: no Security instance with Short Server ID 101"
    run.wait_log(r"^bootstrap from coap://\S+ failed \(the configuration was not usable\); retrying in 10 s$", 5)
    assert server.wait(lambda: len(server.root.bootstrap_requests) == 2, 15), run.dump()
    answer = server.send(server.root.bootstrap_requests[1], Code.GET, "/1", accept=LINK)
    assert answer.payload == b"</>;lwm2m=1.1,</1>;ver=1.1"  # the Server instance written before is gone


def test_a_delete_of_root_keeps_the_bootstrap_account_and_the_device(bootstrapping):
    server, _run, first = bootstrapping
    assert server.send(first, Code.DELETE, "/").code == Code.DELETED
    answer = server.send(first, Code.GET, "/", accept=LINK)
    assert b'</0/0>;uri="coap://127.0.0.1:%d"' % server.port in answer.payload
    assert b"</3/0>" in answer.payload and b"</3303/0>" in answer.payload
    assert server.send(first, Code.DELETE, "/0/0").code == Code.BAD_REQUEST
    assert server.send(first, Code.DELETE, "/3/0").code == Code.BAD_REQUEST
