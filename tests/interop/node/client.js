#!/usr/bin/env node
// A real third-party LwM2M client (Telefonica's lwm2m-node-lib 1.4.0) driven by the Python interop tests.
//
// Usage: node client.js <server host> <server port> <endpoint> [lifetime]
// Prints one JSON object per line on stdout for every event ({"event": "registered", ...}); reads one JSON
// command per line on stdin:
//   {"cmd": "set", "uri": "/3/0", "res": "9", "value": "80"}   change a value (fires observations)
//   {"cmd": "update"} | {"cmd": "deregister"}                  Registration Interface
// Stays up until stdin closes (then de-registers if still registered) so a dying test never leaks it.
'use strict';

const logger = require('logops');
logger.setStream(process.stderr); // stdout is reserved for the JSON event lines
logger.setLevel(process.env.INTEROP_NODE_LOG || 'FATAL');

const client = require('lwm2m-node-lib').client;
const readline = require('readline');

const [host, port, endpoint, lifetime] = process.argv.slice(2);
if (!host || !port || !endpoint) {
    process.stderr.write('usage: node client.js <host> <port> <endpoint> [lifetime]\n');
    process.exit(2);
}

let device = null; // deviceInformation from register/update

function emit(event, fields) {
    process.stdout.write(JSON.stringify(Object.assign({ event: event }, fields || {})) + '\n');
}

function fail(what, error) {
    emit('error', { op: what, message: String(error && (error.message || error.name) || error) });
}

function setHandlers(info) {
    client.setHandler(info.serverInfo, 'write', function (type, id, res, value, cb) {
        emit('write', { uri: '/' + type + '/' + id, res: String(res), value: String(value) });
        cb(null);
    });
    client.setHandler(info.serverInfo, 'execute', function (type, id, res, args, cb) {
        emit('execute', { uri: '/' + type + '/' + id, res: String(res), args: String(args) });
        cb(null);
    });
    client.setHandler(info.serverInfo, 'read', function (type, id, res, value, cb) {
        emit('read', { uri: '/' + type + '/' + id, res: String(res) });
        cb(null);
    });
}

function setValues(uri, values, cb) {
    const ids = Object.keys(values);
    let i = 0;
    (function next(error) {
        if (error || i === ids.length) {
            return cb(error);
        }
        const id = ids[i++];
        client.registry.setResource(uri, id, values[id], next);
    })();
}

function createObjects(cb) {
    client.registry.create('/3/0', function (error) {
        if (error) {
            return cb(error);
        }
        setValues('/3/0', {
            0: 'Telefonica I+D',
            1: 'lwm2m-node-lib',
            2: 'SN-' + endpoint,
            3: '1.4.0',
            9: '87',
            14: '+01:00',
            15: 'Europe/Madrid',
            16: 'U',
        }, function (err) {
            if (err) {
                return cb(err);
            }
            client.registry.create('/1/0', function (e2) {
                if (e2) {
                    return cb(e2);
                }
                setValues('/1/0', { 0: '101', 1: lifetime || '60', 7: 'U' }, cb);
            });
        });
    });
}

function register() {
    client.register(host, port, '', endpoint, function (error, info) {
        if (error) {
            return fail('register', error);
        }
        device = info;
        setHandlers(info);
        emit('registered', { location: info.location, port: info.localPort });
    });
}

const commands = {
    set: function (c) {
        client.registry.setResource(c.uri, String(c.res), String(c.value), function (error) {
            if (error) {
                return fail('set', error);
            }
            emit('set', { uri: c.uri, res: String(c.res), value: String(c.value) });
        });
    },
    update: function () {
        client.update(device, function (error, info) {
            if (error) {
                return fail('update', error);
            }
            device = info;
            setHandlers(info);
            emit('updated', { location: info.location, port: info.localPort });
        });
    },
    deregister: function () {
        const info = device;
        device = null;
        client.unregister(info, function (error) {
            if (error) {
                return fail('deregister', error);
            }
            emit('deregistered', {});
        });
    },
};

client.init({
    client: {
        lifetime: lifetime || '60',
        version: '1.0',
        logLevel: process.env.INTEROP_NODE_LOG || 'FATAL',
        ipProtocol: 'udp4',
        serverProtocol: 'udp4',
        // node-coap 0.22 silently drops any request whose Accept/Content-Format number it has no name for
        // (option_converter throws "No matching format found"); lwm2m-node-lib registers only 1541 by default.
        // Naming every LwM2M format lets the requests through; the library still answers in plain text.
        formats: [
            { name: 'lightweightm2m/text', value: 1541 },
            { name: 'application/vnd.oma.lwm2m+tlv', value: 11542 },
            { name: 'application/vnd.oma.lwm2m+json', value: 11543 },
            { name: 'application/vnd.oma.lwm2m+tlv-pre-1.0', value: 1542 },
            { name: 'application/vnd.oma.lwm2m+json-pre-1.0', value: 1543 },
            { name: 'application/senml+json', value: 110 },
            { name: 'application/senml+cbor', value: 112 },
        ],
        writeFormat: 'lightweightm2m/text',
    },
});

createObjects(function (error) {
    if (error) {
        return fail('create', error);
    }
    register();
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', function (line) {
    if (!line.trim()) {
        return;
    }
    let c;
    try {
        c = JSON.parse(line);
    } catch (error) {
        return fail('parse', error);
    }
    const handler = commands[c.cmd];
    if (!handler) {
        return fail('command', 'unknown command ' + c.cmd);
    }
    if (!device && c.cmd !== 'set') {
        return fail(c.cmd, 'not registered');
    }
    handler(c);
});
rl.on('close', function () {
    if (!device) {
        process.exit(0);
    }
    client.unregister(device, function () {
        process.exit(0);
    });
    setTimeout(function () { process.exit(0); }, 2000).unref();
});
