// The SDK test programs on the official JavaScript SDK, apache-flink-statefun 3.3.0 from npm,
// served with node's http module (see ../README.md).
//
//     NODE_PATH=<.node-statefun-3.3.0/node_modules> node sdk_server.js [PORT]
//
// PORT defaults to 0 (any free port). Prints "PORT <n>" on stdout once it listens on 127.0.0.1,
// then serves until killed: POST /statefun runs the greeter, POST /vectors encodes and decodes
// typed values with the SDK's own types (the protocol is in tests/support/sdk_vectors.py).
"use strict";

const http = require("http");
const {StateFun, messageBuilder, egressMessageBuilder} = require("apache-flink-statefun");

const USER = "greeter/user";
const GREETER = "greeter/greeter";
const visitType = StateFun.jsonType("greeter/Visit");
const recordType = StateFun.jsonType("io.statefun.playground/EgressRecord");
const DAY_MS = 24 * 60 * 60 * 1000;

const statefun = new StateFun();

statefun.bind({
    typename: USER,
    specs: [{name: "visits", type: StateFun.intType(), expireAfterCall: DAY_MS}],
    fn(context, message) {
        const name = message.asString();
        const id = context.self.id;
        const visits = (context.storage.visits ?? 0) + 1;
        context.storage.visits = visits;
        context.send(messageBuilder({
            typename: GREETER, id, value: {name, visits}, valueType: visitType,
        }));
        const text = (value) => messageBuilder({
            typename: GREETER, id, value, valueType: StateFun.stringType(),
        });
        const token = `forget-${id}`;
        if (visits === 1) {
            context.sendAfter(60 * 60 * 1000, text(`Forgotten ${name}`), token);
        } else if (visits === 2) {
            context.cancelDelayedMessage(token);
            context.sendAfter(100, text(`Welcome back ${name}`));
        }
    },
});

statefun.bind({
    typename: GREETER,
    fn(context, message) {
        let payload;
        if (message.isString()) {
            payload = message.asString();
        } else {
            const visit = message.as(visitType);
            payload = `Hello ${visit.name}, visit ${visit.visits}`;
        }
        context.send(egressMessageBuilder({
            typename: "io.statefun.playground/egress",
            value: {topic: "greetings", payload},
            valueType: recordType,
        }));
    },
});

// The SDK's built-in types: it has no long and no double (its types.js leaves them out).
const TYPES = {
    bool: StateFun.booleanType(),
    int: StateFun.intType(),
    float: StateFun.floatType(),
    string: StateFun.stringType(),
    json: StateFun.jsonType("interop/Json"),
};

function fromCanonical(type, value) {
    switch (type) {
        case "int": return Number(value);
        case "float": return Buffer.from(value, "hex").readFloatBE(0);
        default: return value;
    }
}

function toCanonical(type, value) {
    switch (type) {
        case "int": return String(value);
        case "float": {
            const bytes = Buffer.alloc(4);
            bytes.writeFloatBE(value);
            return bytes.toString("hex");
        }
        default: return value;
    }
}

function answer(request) {
    const type = TYPES[request.type];
    try {
        if (type === undefined) {
            throw new Error(`no type ${request.type}`);
        }
        if (request.op === "encode") {
            const bytes = type.serialize(fromCanonical(request.type, request.value));
            return {hex: Buffer.from(bytes).toString("hex")};
        }
        const value = type.deserialize(Buffer.from(request.hex, "hex"));
        return {value: toCanonical(request.type, value)};
    } catch (error) {
        return {error: String(error)};
    }
}

function vectors(req, res) {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
        const requests = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        res.writeHead(200, {"Content-Type": "application/json"});
        res.end(JSON.stringify(requests.map(answer)));
    });
}

const handle = statefun.handler();
const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://localhost").pathname;
    if (path === "/statefun") {
        handle(req, res);
    } else if (path === "/vectors") {
        vectors(req, res);
    } else {
        res.writeHead(404, {"Content-Type": "text/plain"});
        res.end(`nothing at ${req.url}\n`);
    }
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
    console.log(`PORT ${server.address().port}`);
});
