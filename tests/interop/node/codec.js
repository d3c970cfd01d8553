#!/usr/bin/env node
// lwm2m-codec (PeterEB, an independent LwM2M TLV / LwM2M-JSON codec) as a line-oriented JSON service for the
// Python codec cross-check. One request per stdin line, one answer per stdout line, in order:
//   {"op": "encode", "fmt": "tlv"|"json", "path": "/3/0", "value": {"0": "x", "6": {"0": 1}}}
//       -> {"ok": true, "hex": "c800..."}
//   {"op": "decode", "fmt": "tlv"|"json", "path": "/3/0", "hex": "c800..."}
//       -> {"ok": true, "value": {"0": "x", "6": {"0": 1}}}   (resource ids as numbers, not lwm2m-id names)
//   any failure -> {"ok": false, "error": "..."}
// Opaque values travel as base64 strings (the library's own representation).
'use strict';

const codec = require('lwm2m-codec');
const lwm2mId = require('lwm2m-id');
const readline = require('readline');

function oidOf(path) {
    const first = path.split('/').filter(Boolean)[0];
    const item = lwm2mId.getOid(first);
    return item ? item.value : Number(first);
}

function level(path) {
    return path.split('/').filter(Boolean).length; // 1 object, 2 instance, 3 resource
}

function numericRid(oid, key) {
    const item = lwm2mId.getRid(oid, key);
    return item ? String(item.value) : String(key);
}

// lwm2m-codec names decoded resources after lwm2m-id keys ("manuf"); map them back to ids.
function numericKeys(path, value) {
    if (value === null || typeof value !== 'object') {
        return value;
    }
    const oid = oidOf(path);
    const lvl = level(path);
    const out = {};
    for (const key of Object.keys(value)) {
        if (lvl === 1) {
            out[key] = numericKeys(path + '/' + key, value[key]); // instance ids
        } else if (lvl === 2) {
            out[numericRid(oid, key)] = value[key]; // resources (a multiple one is {riid: v})
        } else {
            out[key] = value[key]; // resource instances
        }
    }
    return out;
}

function handle(req) {
    if (req.op === 'encode') {
        const buf = codec.encode(req.fmt, req.path, req.value);
        if (!Buffer.isBuffer(buf)) {
            throw new Error('encode returned ' + typeof buf);
        }
        return { ok: true, hex: buf.toString('hex') };
    }
    if (req.op === 'decode') {
        const value = codec.decode(req.fmt, req.path, Buffer.from(req.hex, 'hex'));
        return { ok: true, value: numericKeys(req.path, value) };
    }
    throw new Error('unknown op ' + req.op);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', function (line) {
    if (!line.trim()) {
        return;
    }
    let answer;
    try {
        answer = handle(JSON.parse(line));
    } catch (error) {
        answer = { ok: false, error: String(error && error.message || error) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
});
