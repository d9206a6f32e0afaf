// tsc compiles only .ts; the protobufjs output is plain JS, so the build copies it into dist/.
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist', 'protocol', 'generated'), { recursive: true });
cpSync(join(root, 'protocol', 'generated', 'messages.js'), join(root, 'dist', 'protocol', 'generated', 'messages.js'));
