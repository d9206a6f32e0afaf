import { describe, expect, it } from 'vitest';
import { terminalSafe } from './observe.js';

describe('terminalSafe', () => {
  it('escapes control characters, escape sequences and bidirectional overrides, one line per record', () => {
    expect(terminalSafe('plain text, émoji 😀, tab\tkept')).toBe('plain text, émoji 😀, tab\tkept');
    expect(terminalSafe('a\x1b[2Jb')).toBe('a\\x1b[2Jb');
    expect(terminalSafe('one\ntwo\r')).toBe('one\\ntwo\\r');
    expect(terminalSafe('\x07\x00\x7f\x9b')).toBe('\\x07\\x00\\x7f\\x9b');
    expect(terminalSafe('abc\u202edcba')).toBe('abc\\u202edcba');
    const hostile = Array.from({ length: 0xa0 }, (_, code) => String.fromCharCode(code)).join('');
    // eslint-disable-next-line no-control-regex
    expect(terminalSafe(hostile)).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/);
  });
});
