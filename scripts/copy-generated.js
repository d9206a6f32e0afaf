// tsc compiles only .ts; the protobufjs output is plain JS with its own declarations, so the build
// copies both into dist/ (the declarations: dist/protocol/messages.d.ts imports them).
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist', 'protocol', 'generated'), { recursive: true });
for (const file of ['messages.js', 'messages.d.ts']) cpSync(join(root, 'protocol', 'generated', file), join(root, 'dist', 'protocol', 'generated', file));
