import { assert, assertEquals, assertRejects } from "./assert.ts";
import { formatDuration, ProgressReporter } from "../pipeline/run/progress.ts";
import { MetricsLog, readMetricsLog } from "../pipeline/run/metrics_log.ts";
import { InputError } from "../pipeline/errors.ts";

/** A fake clock the test advances by hand. */
function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("formatDuration() prints seconds, minutes and hours compactly", () => {
  assertEquals(formatDuration(42.4), "42s");
  assertEquals(formatDuration(187), "3m07s");
  assertEquals(formatDuration(3720), "1h02m");
  assertEquals(formatDuration(NaN), "?");
});

Deno.test("ProgressReporter prints a plain line every printEvery iterations when not a TTY", () => {
  const out: string[] = [];
  const clock = fakeClock();
  const p = new ProgressReporter({
    total: 25,
    batchSize: 50,
    itersPerEpoch: 10,
    printEvery: 10,
    isTTY: false,
    write: (t) => out.push(t),
    now: clock.now,
  });
  for (let i = 1; i <= 25; i++) {
    clock.advance(100); // 100 ms per iteration of 50 captions = 500 captions/s
    p.update(i, 2);
  }
  p.finish();
  assertEquals(out.length, 3); // iterations 10, 20 and the last, 25
  assertEquals(
    out[0],
    "(Iteration 10 / 25) loss: 2.000000 | smoothed 2.0000 | epoch 1/3 | 500 captions/s | ETA 2s\n",
  );
  assert(out[1].startsWith("(Iteration 20 / 25)") && out[1].includes("epoch 2/3"));
  assert(out[2].includes("epoch 3/3") && out[2].endsWith("ETA 0s\n"));
  assert(out.every((l) => !l.includes("\r")));
});

Deno.test("ProgressReporter smooths the loss with a bias-corrected moving average", () => {
  const p = new ProgressReporter({
    total: 3,
    batchSize: 1,
    isTTY: false,
    write: () => {},
    emaDecay: 0.5,
  });
  p.update(1, 4);
  assertEquals(p.smoothedLoss, 4); // 0.5*4 / (1 - 0.5)
  p.update(2, 2);
  // ema = 0.5*2 + 0.5*2 = 2; corrected 2 / (1 - 0.25) = 8/3
  assertEquals(p.smoothedLoss, 8 / 3);
});

Deno.test("ProgressReporter redraws one bar in place on a TTY, throttled", () => {
  const out: string[] = [];
  const clock = fakeClock();
  const p = new ProgressReporter({
    total: 100,
    batchSize: 10,
    isTTY: true,
    columns: 80,
    minRedrawMs: 100,
    write: (t) => out.push(t),
    now: clock.now,
  });
  for (let i = 1; i <= 100; i++) {
    clock.advance(10); // 10 ms per iteration: a redraw every 10 iterations
    p.update(i, 1);
  }
  // Drawn at once at iteration 1, then every 100 ms (11, 21, ..., 91), and at the last.
  assertEquals(out.length, 11);
  for (const frame of out) {
    assert(frame.startsWith("\r") && frame.endsWith("\x1b[K") && !frame.includes("\n"));
    assert(frame.length - "\r\x1b[K".length <= 79, frame);
  }
  assert(out[0].includes("[......") && out[0].includes(" 1/100 "), out[0]);
  assert(out[5].includes("[###############.") && out[5].includes(" 51/100 "), out[5]);
  assert(out[10].includes("[" + "#".repeat(30) + "]") && out[10].includes("100/100"));
  assert(out[10].includes("1000 cap/s"));
  p.log("saved checkpoint");
  assertEquals(out[11], "\r\x1b[Ksaved checkpoint\n");
  assert(out[12].startsWith("\r[")); // the bar comes back under the message
  p.finish();
  assertEquals(out[out.length - 1], "\n");
});

Deno.test("MetricsLog writes one stamped JSON line per record, appending to metrics.jsonl", async () => {
  const lines: string[] = [];
  const log = new MetricsLog((l) => lines.push(l), () => new Date(Date.UTC(2026, 0, 1)));
  log.write({ kind: "train", iteration: 1, epoch: 1, loss: 9.5 });
  log.write({ kind: "eval", iteration: 1, split: "val", metrics: { bleu4: 0.1 } });
  assertEquals(lines, [
    `{"kind":"train","iteration":1,"epoch":1,"loss":9.5,"time":"2026-01-01T00:00:00.000Z"}\n`,
    `{"kind":"eval","iteration":1,"split":"val","metrics":{"bleu4":0.1},"time":"2026-01-01T00:00:00.000Z"}\n`,
  ]);

  const dir = await Deno.makeTempDir();
  try {
    const a = MetricsLog.open(`${dir}/run`);
    a.write({ kind: "train", iteration: 1, epoch: 1, loss: 3 });
    // Written through before close: another reader sees the line at once.
    assertEquals((await readMetricsLog(`${dir}/run/metrics.jsonl`)).length, 1);
    a.close();
    const b = MetricsLog.open(`${dir}/run`);
    b.write({ kind: "val", iteration: 2, epoch: 1, loss: 2.5 });
    b.close();
    const records = await readMetricsLog(`${dir}/run/metrics.jsonl`);
    assertEquals(records.map((r) => [r.kind, "loss" in r ? r.loss : null]), [["train", 3], [
      "val",
      2.5,
    ]]);
    // A torn last line (crash mid-write) is skipped; a bad line in the middle is an error.
    await Deno.writeTextFile(`${dir}/run/metrics.jsonl`, `{"kind":"val"`, { append: true });
    assertEquals((await readMetricsLog(`${dir}/run/metrics.jsonl`)).length, 2);
    await Deno.writeTextFile(
      `${dir}/run/metrics.jsonl`,
      `\n{"kind":"val","iteration":3,"epoch":1,"loss":2}\n`,
      { append: true },
    );
    await assertRejects(
      () => readMetricsLog(`${dir}/run/metrics.jsonl`),
      InputError,
      "line 3: invalid JSON",
    );
    assertEquals(await readMetricsLog(`${dir}/none.jsonl`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
