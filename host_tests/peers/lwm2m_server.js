// A test harness around lwm2m-node-lib (a third-party LwM2M server) for the integration
// tests: `node host_tests/peers/lwm2m_server.js PORT` starts the server on PORT (udp4; the
// library binds every interface with address reuse, the tests only talk to 127.0.0.1).
//
// stdout: one JSON object per line and per event:
//   {"event":"listening","port":N}
//   {"event":"registration","endpoint":..,"lifetime":..,"version":..,"binding":..,"payload":..}
//   {"event":"update","endpoint":..,"lifetime":..,"payload":..,"address":..,"port":..}
//   {"event":"unregistration","endpoint":..}         (the client's De-register)
//   {"event":"expired","endpoint":..}                (the library dropped it: lifetime over)
//   {"event":"error","message":..}
// stdin: one JSON command per line, answered with {"id":..,"result":..} or {"id":..,"error":..}:
//   {"id":1,"op":"read","endpoint":"ep","path":"/3/0/0"}
//   {"id":2,"op":"write","endpoint":"ep","path":"/1/0/1","value":"600"}
//   {"id":3,"op":"execute","endpoint":"ep","path":"/1/0/8","args":"optional"}
//   {"id":4,"op":"discover","endpoint":"ep","path":"/3/0"}          (/O, /O/I or /O/I/R)
//   {"id":5,"op":"write-attributes","endpoint":"ep","path":"/3/0/13","attributes":{"pmin":1}}
//   {"id":6,"op":"device","endpoint":"ep"}                          (the library's record)
// Every command is answered within COMMAND_TIMEOUT_MS. The process exits when stdin closes.
'use strict';

const readline = require('readline');
const lwm2m = require('lwm2m-node-lib').server;

const COMMAND_TIMEOUT_MS = 20000;

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

const port = parseInt(process.argv[2], 10);
if (!(port > 0 && port < 65536)) {
    process.stderr.write('usage: node lwm2m_server.js PORT\n');
    process.exit(2);
}

const config = {
    port: port,
    lifetimeCheckInterval: 1000,
    udpWindow: 100,
    defaultType: 'Device',
    logLevel: 'FATAL',
    ipProtocol: 'udp4',
    serverProtocol: 'udp4',
    formats: [
        {name: 'application-vnd-oma-lwm2m/text', value: 1541},
        {name: 'application-vnd-oma-lwm2m/tlv', value: 1542},
        {name: 'application-vnd-oma-lwm2m/json', value: 1543},
        {name: 'application-vnd-oma-lwm2m/opaque', value: 1544}
    ],
    writeFormat: 'application-vnd-oma-lwm2m/text',
    defaultAcceptFormat: 'text/plain'
};

let serverInfo = null;

function splitPath(path) {
    // "/3/0/1" -> ["3", "0", "1"]; at most three ids, as the library addresses /O/I/R only
    const ids = String(path || '').split('/').filter((s) => s !== '');
    if (ids.length < 1 || ids.length > 3 || !ids.every((s) => /^\d+$/.test(s))) {
        throw new Error('path must be /O, /O/I or /O/I/R, got ' + JSON.stringify(path));
    }
    return ids;
}

function describe(error) {
    if (!error) {
        return 'unknown error';
    }
    // the library's errors carry a CoAP code ("4.05") and a name
    const parts = [];
    if (error.code) parts.push(String(error.code));
    if (error.name) parts.push(String(error.name));
    if (error.message) parts.push(String(error.message));
    return parts.join(' ') || String(error);
}

function withDevice(endpoint, callback) {
    lwm2m.getDevice(endpoint, callback);
}

// The path depth each command needs: [fewest, most] ids.
const DEPTHS = {
    'device': [0, 0], 'read': [3, 3], 'write': [3, 3], 'execute': [3, 3],
    'discover': [1, 3], 'write-attributes': [1, 3]
};

function run(cmd, done) {
    // Checks the command before anything is sent; throws for a bad one.
    const depth = DEPTHS[cmd.op];
    if (!depth) {
        throw new Error('unknown op ' + JSON.stringify(cmd.op));
    }
    const ids = depth[1] === 0 ? [] : splitPath(cmd.path);
    if (ids.length < depth[0] || ids.length > depth[1]) {
        throw new Error(cmd.op + ' needs ' + depth[0] + ' to ' + depth[1] + ' ids, got ' + cmd.path);
    }
    withDevice(cmd.endpoint, function (error, device) {
        if (error) {
            return done(error);
        }
        switch (cmd.op) {
        case 'device':
            return done(null, {id: device.id, name: device.name, lifetime: device.lifetime,
                address: device.address, port: device.port, path: device.path});
        case 'read':
            return lwm2m.read(device.id, ids[0], ids[1], ids[2], done);
        case 'write':
            return lwm2m.write(device.id, ids[0], ids[1], ids[2], String(cmd.value), done);
        case 'execute':
            return lwm2m.execute(device.id, ids[0], ids[1], ids[2],
                cmd.args === undefined || cmd.args === null ? undefined : String(cmd.args), done);
        case 'discover':
            return lwm2m.discover.apply(null, [device.id].concat(ids, [done]));
        case 'write-attributes':
            return lwm2m.writeAttributes(device.id, ids[0], ids[1], ids[2], cmd.attributes || {}, done);
        }
    });
}

function onCommand(line) {
    if (!line.trim()) {
        return;
    }
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (e) {
        return emit({event: 'error', message: 'bad command line: ' + line});
    }
    let answered = false;
    const timer = setTimeout(function () {
        answer('timeout after ' + COMMAND_TIMEOUT_MS + ' ms');
    }, COMMAND_TIMEOUT_MS);

    function answer(error, result) {
        if (answered) {
            return;
        }
        answered = true;
        clearTimeout(timer);
        if (error) {
            emit({id: cmd.id, error: describe(error)});
        } else {
            emit({id: cmd.id, result: result === undefined ? null : result});
        }
    }

    if (!serverInfo) {
        return answer(new Error('server not started'));
    }
    try {
        run(cmd, answer);
    } catch (e) {
        answer(e);
    }
}

function shutdown() {
    const force = setTimeout(function () { process.exit(0); }, 2000);
    force.unref();
    if (serverInfo) {
        lwm2m.stop(serverInfo, function () { process.exit(0); });
    } else {
        process.exit(0);
    }
}

lwm2m.start(config, function (error, info) {
    if (error) {
        emit({event: 'error', message: 'start failed: ' + describe(error)});
        process.exit(1);
    }
    serverInfo = info;
    lwm2m.setHandler(serverInfo, 'registration', function (endpoint, lifetime, version, binding, payload, callback) {
        emit({event: 'registration', endpoint: endpoint, lifetime: lifetime, version: version,
            binding: binding, payload: payload});
        callback();
    });
    lwm2m.setHandler(serverInfo, 'updateRegistration', function (device, payload, callback) {
        emit({event: 'update', endpoint: device.name, lifetime: device.lifetime, payload: payload,
            address: device.address, port: device.port});
        callback();
    });
    lwm2m.setHandler(serverInfo, 'unregistration', function (device, callback) {
        emit({event: 'unregistration', endpoint: device.name});
        callback();
    });
    // setHandler('unregistration') also arms the library's lifetime check with the same
    // handler but an undefined interval (a 1 ms timer); re-arm it at 1 s with a handler of its
    // own, so that an expiry is told apart from a De-register.
    lwm2m.getRegistry().checkLifetime(1000, function (device, callback) {
        emit({event: 'expired', endpoint: device.name});
        callback();
    });
    emit({event: 'listening', port: port});
});

const input = readline.createInterface({input: process.stdin});
input.on('line', onCommand);
input.on('close', shutdown);
