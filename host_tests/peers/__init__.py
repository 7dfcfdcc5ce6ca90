# Peers and helpers of the integration tests (CPython only): the client run as a process
# (host.py), the lwm2m-node-lib server driven from Python (node_server.py), a UDP relay that
# records, drops and injects datagrams (relay.py) and a scripted aiocoap LwM2M server
# (coap_server.py). Everything binds 127.0.0.1 only and every wait is bounded.
