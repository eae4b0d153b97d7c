// BullMQ doing end_to_end's work, for `cargo xtask bench --peers`.
//
// `cargo xtask bench` installs a pinned bullmq and ioredis into a temporary
// directory, copies this script there and runs it once per round of
// end_to_end, against the bench's own Redis. The workload is courier's
// end_to_end: N JSON messages of about 256 bytes, each with its
// interaction id as jobId (BullMQ's idempotency key), enqueued with
// addBulk in batches, then drained by one Worker with 50 jobs in flight
// whose processor does nothing. Jobs keep BullMQ's defaults (completed jobs
// are kept, as courier keeps its done marks).
//
// Usage: node bullmq.mjs REDIS_URL PREFIX COUNT BATCH CONCURRENCY
// Prints one JSON line on stdout:
//   {"bullmq":"6.7.0","count":N,"enqueue_per_s":..,"drain_per_s":..,
//    "enqueue_cpu_us_per_msg":..,"drain_cpu_us_per_msg":..}
// CPU is this process's user+sys time (process.cpuUsage) over each phase.

import { createRequire } from "node:module";
import { Queue, Worker } from "bullmq";

const [url, prefix, countArg, batchArg, concurrencyArg] = process.argv.slice(2);
if (!url || !prefix) {
  console.error("usage: node bullmq.mjs REDIS_URL PREFIX COUNT BATCH CONCURRENCY");
  process.exit(2);
}
const count = Number(countArg ?? 20000);
const batch = Number(batchArg ?? 500);
const concurrency = Number(concurrencyArg ?? 50);
const { hostname, port } = new URL(url);
// A worker's blocking connection must not give up on a slow reply.
const connection = { host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null };
const version = createRequire(import.meta.url)("bullmq/package.json").version;

// The same shape as the bench's interactions: about 256 bytes of JSON.
function interaction(i) {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
  const base = {
    interaction_id: id,
    customer_id: `C${String(i % 100000000).padStart(8, "0")}`,
    region: "emea",
    medium: "chat",
    language: "en",
    text: "",
    received_at: "2026-11-28T09:30:00.000Z",
  };
  const padding = Math.max(1, 256 - JSON.stringify(base).length);
  base.text = "My invoice shows a charge I do not recognise, please check it. "
    .repeat(4)
    .slice(0, padding);
  return base;
}

const messages = Array.from({ length: count }, (_, i) => interaction(i));
const name = "events";
const queue = new Queue(name, { connection, prefix });
await queue.waitUntilReady();

function cpuMicros(since) {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

let started = performance.now();
let cpu = process.cpuUsage();
for (let at = 0; at < messages.length; at += batch) {
  await queue.addBulk(
    messages.slice(at, at + batch).map((data) => ({
      name: "interaction",
      data,
      opts: { jobId: data.interaction_id },
    })),
  );
}
const enqueueSeconds = (performance.now() - started) / 1000;
const enqueueCpu = cpuMicros(cpu);

let completed = 0;
let finished;
const done = new Promise((resolve) => {
  finished = resolve;
});
const worker = new Worker(name, async () => {}, {
  connection,
  prefix,
  concurrency,
  autorun: false,
});
worker.on("completed", () => {
  completed += 1;
  if (completed === count) finished();
});
worker.on("failed", (job, error) => {
  console.error(`job ${job?.id} failed: ${error}`);
  process.exit(1);
});
await worker.waitUntilReady();
started = performance.now();
cpu = process.cpuUsage();
worker.run();
await done;
const drainSeconds = (performance.now() - started) / 1000;
const drainCpu = cpuMicros(cpu);

await worker.close();
await queue.close();
console.log(
  JSON.stringify({
    bullmq: version,
    count,
    enqueue_per_s: count / enqueueSeconds,
    drain_per_s: count / drainSeconds,
    enqueue_cpu_us_per_msg: enqueueCpu / count,
    drain_cpu_us_per_msg: drainCpu / count,
  }),
);
