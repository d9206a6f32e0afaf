/**
 * A user function's stack trace, as its caller gets it (`LfaasError.remoteStack`): the frames in
 * the function's own bundle, mapped back to its source files, lines and columns with the source
 * map registered with it (client/bundle.ts), here in the executor with `node:module`'s
 * `SourceMap`, never inside the function's realm.
 *
 * The text comes from the function (it can throw anything with any `stack`): it is read bounded
 * (its first {@link STACK_INPUT_CHARS_MAX} characters, {@link FRAMES_MAX} frames), and only frames
 * of the function's own file are kept: the sandbox's and Node's frames (host paths of this
 * executor) never leave it. A frame the map does not cover keeps its bundle position.
 *
 * @example
 * ```ts
 * mappedStack('Error: boom\n    at fail (square@1.js:4:9)', 'square@1', map);
 * // '    at fail (functions/square.ts:3:9)'
 * ```
 */
import { SourceMap } from 'node:module';

/** Characters of a function's stack read, at most. */
export const STACK_INPUT_CHARS_MAX = 16 * 1024;
/** Frames kept, at most. */
export const FRAMES_MAX = 32;
/** Parsed source maps kept (per function version), at most. */
const MAPS_MAX = 64;

const maps = new Map<string, SourceMap | undefined>();

/** The parsed map of a function version (kept, bounded); undefined when it has none or it does not parse. */
function mapOf(functionId: string, sourceMap: string | undefined): SourceMap | undefined {
  if (sourceMap === undefined || sourceMap.length === 0) return undefined;
  if (maps.has(functionId)) return maps.get(functionId);
  let parsed: SourceMap | undefined;
  try {
    parsed = new SourceMap(JSON.parse(sourceMap) as ConstructorParameters<typeof SourceMap>[0]);
  } catch {
    parsed = undefined;
  }
  if (maps.size >= MAPS_MAX) maps.delete(maps.keys().next().value!);
  maps.set(functionId, parsed);
  return parsed;
}

/** A source's name as shown: relative, without leading `../` (the registering client's layout, not a path of this host). */
function shownSource(source: string): string {
  const path = source.replace(/^[a-z]+:\/\//i, '').replace(/\\/g, '/');
  if (path.startsWith('/') || /^[a-z]:\//i.test(path)) return path.slice(path.lastIndexOf('/') + 1);
  return path.replace(/^(?:\.\.?\/)+/, '');
}

const FRAME = /^\s*at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;

/**
 * The function's frames of `stack`, mapped (see the module's note); '' when none is the
 * function's. `functionId` is `name@version`: the sandbox names the bundle `<functionId>.js` (a
 * compartment's, with characters outside `[\w@.-]` as `_`), after one line of its own wrapper.
 */
export function mappedStack(stack: string, functionId: string, sourceMap: string | undefined): string {
  const files = new Set([`${functionId}.js`, `${functionId.replace(/[^\w@.-]/g, '_')}.js`]);
  const map = mapOf(functionId, sourceMap);
  const frames: string[] = [];
  for (const line of stack.slice(0, STACK_INPUT_CHARS_MAX).split('\n')) {
    if (frames.length >= FRAMES_MAX) break;
    const match = FRAME.exec(line);
    if (match === null) continue;
    const [, name, file, lineText, columnText] = match;
    if (file === undefined || !files.has(file)) continue;
    // The wrapper's first line shifts the bundle's lines by one.
    const bundleLine = Number(lineText) - 1;
    const column = Number(columnText);
    const shownName = name === undefined || name.length > 200 ? '<anonymous>' : name;
    const entry = map === undefined || bundleLine < 1 ? undefined : (map.findEntry(bundleLine - 1, column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number; name?: string });
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined && entry.originalColumn !== undefined) {
      frames.push(`    at ${shownName} (${shownSource(entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1})`);
    } else frames.push(`    at ${shownName} (${functionId}.js:${bundleLine}:${column})`);
  }
  return frames.join('\n');
}
