// The smoke test's functions (see smoke_functions.py) on the official JavaScript SDK,
// apache-flink-statefun 3.3.0, served with node's http module.
//
//     NODE_PATH=<.node-statefun-3.3.0/node_modules> node smoke_server.js [PORT]
//
// PORT defaults to 0 (any free port). Prints "SDK apache-flink-statefun <version>" and then
// "PORT <n>" on stdout once it listens on 127.0.0.1, and serves POST /statefun until killed.
// Any other path answers 404. A failing function answers what the SDK's own handler answers:
// 500 with an empty body.
"use strict";

const http = require("http");
const {StateFun, messageBuilder, egressMessageBuilder} = require("apache-flink-statefun");
const sdkVersion = require("apache-flink-statefun/package.json").version;

const INTERPRETER = "smoke/command-interpreter";
const ECHO = "smoke/echo";
const COMMANDS = "smoke/Commands";
const EGRESS = "io.statefun.playground/egress";
const EGRESS_RECORD = "io.statefun.playground/EgressRecord";

// The JS SDK has no long type (its types.js leaves io.statefun.types/long out on purpose), so
// this is one: the bytes of a LongWrapper message, `sfixed64 value = 1`. As proto3 does, 0 is
// the empty message; otherwise tag 0x09 (field 1, wire type fixed64) then 8 bytes little-endian.
// Values are JS numbers, exact up to 2^53, which is plenty for a counter.
const longType = StateFun.customType(
    "io.statefun.types/long",
    (value) => {
        if (value === 0) {
            return Buffer.alloc(0);
        }
        const bytes = Buffer.alloc(9);
        bytes[0] = 0x09;
        bytes.writeBigInt64LE(BigInt(value), 1);
        return bytes;
    },
    (bytes) => {
        if (bytes.length === 0) {
            return 0;
        }
        if (bytes.length !== 9 || bytes[0] !== 0x09) {
            throw new Error(`not a LongWrapper: ${bytes.toString("hex")}`);
        }
        return Number(bytes.readBigInt64LE(1));
    },
);
const commandsType = StateFun.jsonType(COMMANDS);
const recordType = StateFun.jsonType(EGRESS_RECORD);

class SmokeError extends Error {}

function toInterpreter(target, commands) {
    return messageBuilder({
        typename: INTERPRETER, id: target, value: {commands}, valueType: commandsType,
    });
}

function egress(topic, payload) {
    return egressMessageBuilder({typename: EGRESS, value: {topic, payload}, valueType: recordType});
}

function run(context, kind, body) {
    switch (kind) {
        case "increment":
            context.storage.state = (context.storage.state ?? 0) + 1;
            break;
        case "send":
            context.send(toInterpreter(body.target, body.commands));
            break;
        case "send_after":
            // An absent token is passed as undefined: the SDK then leaves cancellation_token unset.
            context.sendAfter(body.delay_ms, toInterpreter(body.target, body.commands), body.token);
            break;
        case "cancel_send_after":
            context.cancelDelayedMessage(body.token);
            break;
        case "send_egress":
            context.send(egress("discard", body.payload));
            break;
        case "verify": {
            const actual = context.storage.state ?? 0;
            const payload = JSON.stringify({id: context.self.id, tag: body.tag, actual});
            context.send(egress("verification", payload));
            break;
        }
        case "reply": {
            const caller = context.caller;
            if (caller !== null) {
                context.send(messageBuilder({
                    typename: caller.typename, id: caller.id, value: body.text,
                    valueType: StateFun.stringType(),
                }));
            }
            break;
        }
        case "fail":
            throw new SmokeError(body.message);
        default:
            throw new Error(`unknown command ${kind}`);
    }
}

const statefun = new StateFun();

statefun.bind({
    typename: INTERPRETER,
    specs: [{name: "state", type: longType}],
    fn(context, message) {
        if (!message.is(commandsType)) {
            throw new TypeError(`expected a ${COMMANDS} message, got a ${message.valueTypeName}`);
        }
        for (const command of message.as(commandsType).commands) {
            const entries = Object.entries(command);
            if (entries.length !== 1) {
                throw new Error(`a command has exactly one key: ${JSON.stringify(command)}`);
            }
            const [[kind, body]] = entries;
            run(context, kind, body);
        }
    },
});

statefun.bind({
    typename: ECHO,
    fn(context, message) {
        const payload = message.isString() ? message.asString() : message.valueTypeName;
        context.send(egress("echo", payload));
    },
});

const handle = statefun.handler();
const server = http.createServer((req, res) => {
    if (new URL(req.url, "http://localhost").pathname !== "/statefun") {
        res.writeHead(404, {"Content-Type": "text/plain"});
        res.end(`no function endpoint at ${req.url}; POST to /statefun\n`);
        return;
    }
    handle(req, res);
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
    console.log(`SDK apache-flink-statefun ${sdkVersion}`);
    console.log(`PORT ${server.address().port}`);
});
