import { availableBackends, kernels } from "../layers/kernels/mod.ts";
import { assertEquals } from "./assert.ts";

// Nothing in this file selects a backend: the first use must choose the fastest one (or the
// one RECAP_BACKEND names), so library users get the fast path without asking.
Deno.test("kernels() chooses RECAP_BACKEND or the fastest available backend on first use", () => {
  const wanted = Deno.env.get("RECAP_BACKEND") ?? availableBackends()[0];
  assertEquals(kernels().name, wanted);
  assertEquals(kernels(), kernels());
});
