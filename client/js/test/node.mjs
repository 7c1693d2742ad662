// Runs the module's unit tests and the conformance cases in Node (20 or
// later): node client/js/test/node.mjs [conformance dir]. The Go test
// TestModuleInNode runs it when node is installed; CI runs the same tests
// in Chromium (cmd/tickgate/jsclient_integration_test.go).

import {readdirSync, readFileSync} from "node:fs";
import {join} from "node:path";
import {parse} from "../json.js";
import {runCases} from "./conformance.js";
import {run} from "./harness.js";
import "./unit.js";

const dir = process.argv[2] ?? new URL("../../../proto/testdata/conformance", import.meta.url).pathname;
const files = readdirSync(dir).filter(f => f.endsWith(".json")).sort();
const cases = files.map(file => ({file, case: parse(readFileSync(join(dir, file), "utf8"))}));

const unit = await run(process.env.TEST_FILTER ? new RegExp(process.env.TEST_FILTER) : undefined);
const conf = await runCases(cases);
let bad = unit.failed.length;
for (const f of unit.failed) console.log(`FAIL unit: ${f.name}\n  ${f.error.replaceAll("\n", "\n  ")}`);
for (const r of conf) {
  if (r.failures.length) {
    bad++;
    console.log(`FAIL conformance: ${r.file} (${r.codec})\n  ${r.failures.join("\n  ")}`);
  }
}
console.log(`unit: ${unit.passed.length} passed, ${unit.failed.length} failed in ${unit.ms} ms; conformance: ${files.length} cases x 2 codecs, ${conf.filter(r => !r.failures.length).length} of ${conf.length} passed`);
process.exit(bad ? 1 : 0);
