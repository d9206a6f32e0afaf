/** Where the example functions the demos deploy are: the repository's sources, or the compiled package. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The path of example function `name` (examples/<folder>/<name>.ts, or its compiled .js; folder `functions` by default). */
export function exampleFunctionPath(name: string, folder = 'functions'): string {
  const candidates = [
    new URL(`../../examples/${folder}/${name}.ts`, import.meta.url), // from dist/cli/: the repository's sources
    new URL(`../examples/${folder}/${name}.ts`, import.meta.url), // from cli/ (sources run directly)
    new URL(`../examples/${folder}/${name}.js`, import.meta.url), // from dist/cli/: the compiled module
  ].map((url) => fileURLToPath(url));
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) throw new Error(`example function ${name} not found (looked for ${candidates.join(', ')})`);
  return found;
}
