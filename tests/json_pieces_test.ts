/** The piecewise JSON scan of large annotation files: the same values as JSON.parse, piece by piece. */
import { scanJsonObject } from "../pipeline/data/import/json_pieces.ts";
import { assertEquals, assertThrows } from "./assert.ts";

/** Scans `text`, collecting the streamed elements. */
function scanned(text: string, arrays = ["images", "annotations"]) {
  const got: Record<string, unknown[]> = {};
  const { members, counts } = scanJsonObject(text, arrays, (member, value, i) => {
    (got[member] ??= [])[i] = value;
  });
  return { got, members, counts };
}

Deno.test("scanJsonObject() hands over each array element as JSON.parse reads it", () => {
  const doc = {
    info: { description: 'quotes " and brackets ] } [ {', escapes: "a\\\\", url: "http://x/{y}" },
    images: [
      { id: 1, file_name: 'a\\"b.jpg', tags: [[1, 2], { "]": "[" }] },
      { id: 2 },
      "x",
      3.5e-2,
      null,
    ],
    annotations: [],
    licenses: [true, false],
  };
  for (
    const text of [
      JSON.stringify(doc),
      JSON.stringify(doc, null, 2),
      JSON.stringify(doc, null, "\t"),
    ]
  ) {
    const { got, members, counts } = scanned(text);
    assertEquals(got.images, doc.images);
    assertEquals(got.annotations, undefined);
    assertEquals(counts, { images: 5, annotations: 0 });
    assertEquals(members, { info: doc.info, licenses: doc.licenses });
  }
  // A member to stream that is not an array is returned as it is.
  assertEquals(scanned('{"images": {"a": 1}}').members, { images: { a: 1 } });
  assertEquals(scanned(" { } ").counts, {});
});

Deno.test("scanJsonObject() refuses what is not a JSON object, with JSON.parse's message where it has one", () => {
  for (
    const bad of [
      '{"images": [{"id": 1}, {"id": 2]}',
      '{"images": [1 2]}',
      "[1, 2]",
      '{"a": 1} x',
      '{"a": "b',
    ]
  ) {
    assertThrows(() => scanned(bad), SyntaxError);
  }
  const e = assertThrows(() => scanned('{"images": [{"id": 1,}]}'), SyntaxError);
  let native = "";
  try {
    JSON.parse('{"images": [{"id": 1,}]}');
  } catch (err) {
    native = (err as Error).message;
  }
  assertEquals(e.message, native);
});
