// A second MCAP implementation checks our files: Foxglove's TypeScript reader (@mcap/core, the one the
// Foxglove app uses), with zstd/lz4 from @mcap/support. Reads the whole file as a stream with CRC checks,
// then through its summary and index, and prints per topic what it found, as JSON.
//
//   npm install --prefix DIR @mcap/core @mcap/support
//   NODE_PATH=DIR/node_modules node scripts/mcap_verify.mjs FILE.mcap
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH || ".", "x.js"));
const { McapStreamReader, McapIndexedReader } = require("@mcap/core");
const { loadDecompressHandlers } = require("@mcap/support");

const file = process.argv[2];
const data = await readFile(file);
const decompressHandlers = await loadDecompressHandlers();

const stream = new McapStreamReader({ decompressHandlers, validateCrcs: true });
stream.append(data);
const channels = new Map();
const schemas = new Map();
const topics = {};
let header;
for (let rec; (rec = stream.nextRecord()); ) {
  if (rec.type === "Header") header = rec;
  if (rec.type === "Schema") schemas.set(rec.id, rec);
  if (rec.type === "Channel") channels.set(rec.id, rec);
  if (rec.type === "Message") {
    const ch = channels.get(rec.channelId);
    const schema = schemas.get(ch.schemaId);
    const t = (topics[ch.topic] ??= { encoding: ch.messageEncoding, schemaName: schema?.name ?? "",
      schemaEncoding: schema?.encoding ?? "", metadata: Object.fromEntries(ch.metadata), sequences: [], bytes: 0 });
    t.sequences.push(rec.sequence);
    t.bytes += rec.data.byteLength;
  }
}
if (!stream.done()) throw new Error(`${file}: the stream reader did not reach the end of the file`);

const readable = { size: async () => BigInt(data.byteLength),
  read: async (offset, length) => data.subarray(Number(offset), Number(offset + length)) };
const indexed = await McapIndexedReader.Initialize({ readable, decompressHandlers });
let indexedCount = 0;
for await (const _ of indexed.readMessages()) indexedCount++;
const statsCount = Number(indexed.statistics?.messageCount ?? -1n);
console.log(JSON.stringify({ profile: header?.profile, library: header?.library, topics,
  indexedCount, statsCount, compression: [...new Set(indexed.chunkIndexes.map((c) => c.compression || "none"))] }));
