import { readFileSync, statSync } from 'node:fs';
import {
  Composer,
  Lexer,
  Parser,
  YAMLParseError,
  isScalar,
  visit,
  type CST,
  type Document,
  type DocumentOptions,
  type ParseOptions,
  type SchemaOptions,
} from 'yaml';

/**
 * YAML parsed within a budget. The `yaml` package builds a syntax tree and a document model for
 * each document: up to ~350 bytes of memory per token (an 8 MiB flow sequence `[1,1,…]` takes
 * 3.7 GiB and a minute), and its duplicate-key check is quadratic in the keys of one mapping
 * (40,000 keys: 20 s). Here documents are composed one at a time from a token stream that is
 * counted as it is lexed, so a document past its token budget is refused before its tree is
 * built, and duplicate keys are found with one set per mapping.
 */

/** A document has more tokens than its budget: refused before it was composed. */
export class DocumentTooLarge extends Error {
  constructor(
    readonly document: number,
    readonly maxTokens: number,
  ) {
    super(`document ${document} has more than ${maxTokens} YAML tokens`);
  }
}

/** Yielded every TICK_TOKENS tokens inside a long document: where an async reader lets the event loop run. */
export const TICK = Symbol('tick');
const TICK_TOKENS = 50_000;

type ComposeOptions = ParseOptions & DocumentOptions & SchemaOptions;

/** What yaml reports for two equal keys in one mapping (it would find them by comparing every pair). */
const DUPLICATE = 'Map keys must be unique';

/** Equal scalar keys in any mapping of the document: an error each, as `yaml` reports them (found in linear time). */
function duplicateKeys(doc: Document.Parsed): void {
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const { key } of map.items) {
        if (!isScalar(key)) continue; // yaml compares other keys by identity: never equal
        const value = key.value;
        if (typeof value === 'number' && Number.isNaN(value)) continue; // NaN !== NaN
        if (seen.has(value)) {
          const at = key.range?.[0] ?? 0;
          doc.errors.push(new YAMLParseError([at, at + 1], 'DUPLICATE_KEY', DUPLICATE));
        } else seen.add(value);
      }
    },
  });
}

/**
 * The documents of a YAML stream, composed one at a time (as parseAllDocuments would give them,
 * duplicate keys reported the same way), each of at most `maxTokens` tokens: a longer document
 * throws DocumentTooLarge as soon as it passes the budget. Each document is handed to `read`
 * while it is held, and what `read` returns is yielded once the composer has let it go (it holds
 * a document until the next one is composed): what follows a document's read (a parse of its
 * substituted text) does not have it in memory too. Between documents, and every TICK_TOKENS
 * tokens within one, TICK is yielded.
 */
export function* yamlDocuments<R>(
  text: string,
  maxTokens: number,
  options: ComposeOptions,
  read: (doc: Document.Parsed) => R,
): Generator<R | typeof TICK> {
  const unique = options.uniqueKeys !== false;
  // Line positions, as parseAllDocuments gives them with a LineCounter.
  const parser = new Parser(
    options.lineCounter ? (offset: number) => options.lineCounter?.addNewLine(offset) : undefined,
  );
  options.lineCounter?.addNewLine(0); // what Parser.parse does for the first line
  const composer = new Composer({ ...options, uniqueKeys: false });
  let parsed = 0;
  let tokens = 0;
  const out = function* (docs: Iterable<Document.Parsed>): Generator<R | typeof TICK> {
    const results: R[] = [];
    for (const doc of docs) {
      if (unique) duplicateKeys(doc);
      results.push(read(doc));
    }
    for (const result of results.splice(0)) {
      yield result;
      yield TICK;
    }
  };
  const step = function* (csts: Iterable<CST.Token>): Generator<R | typeof TICK> {
    for (const cst of csts) {
      // The parser emits a document once it is complete: the next one starts counting.
      if (cst.type === 'document') {
        parsed++;
        tokens = 0;
      }
      yield* out(composer.next(cst));
    }
  };
  for (const lexeme of new Lexer().lex(text)) {
    if (++tokens > maxTokens) throw new DocumentTooLarge(parsed + 1, maxTokens);
    if (tokens % TICK_TOKENS === 0) yield TICK;
    yield* step(parser.next(lexeme));
  }
  yield* step(parser.end());
  yield* out(composer.end());
}

/** The documents of a text (no TICKs): for small inputs read synchronously, within the same token budget. */
export function parseDocuments(text: string, maxTokens: number, options: ComposeOptions = {}): Document.Parsed[] {
  const docs: Document.Parsed[] = [];
  for (const doc of yamlDocuments(text, maxTokens, options, (d) => d)) if (doc !== TICK) docs.push(doc);
  return docs;
}

/**
 * Where the documents of a YAML stream start (`---` at the start of a line, which always begins a
 * document, even inside a block scalar) without parsing it: their number (a lower bound of the
 * documents: an implicit first one and documents after `...` are not counted) and the longest
 * stretch of text between two of them (what one document can be at most, in UTF-16 units).
 */
export function documentMarkers(text: string): { markers: number; longest: number } {
  const marker = /^---(?=[ \t\r\n]|$)/gm;
  let markers = 0;
  let previous = 0;
  let longest = 0;
  for (let m = marker.exec(text); m; m = marker.exec(text)) {
    markers++;
    longest = Math.max(longest, m.index - previous);
    previous = m.index;
  }
  return { markers, longest: Math.max(longest, text.length - previous) };
}

/** A build input read whole before a render (a kustomization, a Chart.yaml): at most this large, and this many YAML tokens. */
export const BUILD_INPUT_LIMITS = { bytes: 1024 * 1024, tokens: 200_000 };

/** A build input past BUILD_INPUT_LIMITS: not read, so (where it matters) not rendered. */
export class BuildInputTooLarge extends Error {
  constructor() {
    super(`larger than ${BUILD_INPUT_LIMITS.bytes / 1024 / 1024} MiB or ${BUILD_INPUT_LIMITS.tokens} YAML tokens`);
  }
}

/** The text of a build input, refused (BuildInputTooLarge) by its size before it is read. */
export function readBuildInput(file: string): string {
  if (statSync(file).size > BUILD_INPUT_LIMITS.bytes) throw new BuildInputTooLarge();
  return readFileSync(file, 'utf8');
}

/** The documents of a build input's text, within BUILD_INPUT_LIMITS (BuildInputTooLarge past them). */
export function buildInputDocuments(text: string, options: ComposeOptions = {}): Document.Parsed[] {
  try {
    return parseDocuments(text, BUILD_INPUT_LIMITS.tokens, options);
  } catch (err) {
    if (err instanceof DocumentTooLarge) throw new BuildInputTooLarge();
    throw err;
  }
}

/**
 * A build input's single document as yaml's `parse` gives it (null when empty; the first error
 * thrown; more than one document is an error), within BUILD_INPUT_LIMITS.
 */
export function parseBuildInput(file: string): unknown {
  const docs = buildInputDocuments(readBuildInput(file));
  if (docs.length > 1) throw new Error('more than one YAML document');
  const [doc] = docs;
  if (!doc) return null;
  if (doc.errors.length > 0) throw doc.errors[0];
  return doc.toJS();
}
