// Parse an AsyncAPI document with the official parser: `node validate_asyncapi.mjs docs/asyncapi.yaml`.
// Prints `{errors, warnings, diagnostics}` as JSON; exits 1 when any diagnostic is an error (severity 0).
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];

async function main(path) {
  if (!path) {
    console.error("usage: node validate_asyncapi.mjs FILE");
    return 2;
  }
  const text = await readFile(path, "utf8");
  const { diagnostics } = await new Parser().parse(text);
  const listed = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] ?? String(d.severity),
    code: d.code,
    message: d.message,
    path: d.path,
  }));
  const errors = diagnostics.filter((d) => d.severity === 0).length;
  const warnings = diagnostics.filter((d) => d.severity === 1).length;
  console.log(JSON.stringify({ errors, warnings, diagnostics: listed }, null, 2));
  return errors ? 1 : 0;
}

process.exitCode = await main(process.argv[2]);
