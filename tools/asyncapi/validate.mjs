// Validates an AsyncAPI document with the official parser (@asyncapi/parser, its default Spectral ruleset).
//
//   node tools/asyncapi/validate.mjs contracts/asyncapi.json
//
// Prints one JSON object: {file, parser, asyncapi, valid, counts, diagnostics: [{severity, code, message, path,
// line, character}]}. Exits 1 when a diagnostic has severity "error" (or the document cannot be read), 2 on
// wrong usage, 0 otherwise; warnings and hints are reported but do not fail.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');
const parserVersion = require('@asyncapi/parser/package.json').version;

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'information',
  [DiagnosticSeverity.Hint]: 'hint',
};

async function main(argv) {
  if (argv.length !== 1) {
    process.stderr.write('usage: node validate.mjs ASYNCAPI_FILE\n');
    return 2;
  }
  const file = path.resolve(argv[0]);
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    process.stdout.write(JSON.stringify({ file, parser: parserVersion, valid: false, diagnostics: [
      { severity: 'error', code: 'unreadable', message: String(error.message), path: [] },
    ] }, null, 2) + '\n');
    return 1;
  }
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const reported = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] ?? String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path ?? [],
    line: d.range ? d.range.start.line + 1 : null,
    character: d.range ? d.range.start.character + 1 : null,
  }));
  const counts = {};
  for (const d of reported) counts[d.severity] = (counts[d.severity] ?? 0) + 1;
  const valid = document !== undefined && !reported.some((d) => d.severity === 'error');
  process.stdout.write(JSON.stringify({
    file,
    parser: parserVersion,
    asyncapi: document ? document.version() : null,
    valid,
    counts,
    diagnostics: reported,
  }, null, 2) + '\n');
  return valid ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
