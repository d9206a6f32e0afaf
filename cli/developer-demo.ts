/**
 * Demo 9 of `lfaas up --demo`: what a developer uses around a function. A call over HTTP through
 * the ingress (the curl line printed), a function's error with its own stack trace mapped back to
 * its `.ts` lines, the lines it logged read back with `faas.logs`, an async call cancelled while
 * it runs, and the invocations listing with each call's state.
 */
import { ErrorCode, LatticeFaas, isLfaasError } from '../client/index.js';
import { exampleFunctionPath } from './example-paths.js';

/** A function that waits `ms` unless its call is cancelled (its signal aborts). */
const SLOW_CODE = `module.exports = (ms, ctx) => new Promise((resolve) => {
  const timer = setTimeout(() => resolve('finished'), ms);
  ctx.signal.addEventListener('abort', () => { clearTimeout(timer); resolve('stopped'); });
});`;

/** Resolves with whether every result was right. */
export async function developerDemo(faas: LatticeFaas, ingress: string | undefined): Promise<boolean> {
  console.log('\ndemo 9: around a function: HTTP, stack traces, logs, cancellation, invocations\n');
  let ok = true;
  const square = await faas.register<(x: number) => number>('square', exampleFunctionPath('square'));
  const divide = await faas.register<(a: number, b: number) => number>('checked-divide', exampleFunctionPath('checked-divide'));
  if (ingress === undefined) console.log('  (no HTTP ingress in this cluster: skipped)');
  else {
    const response = await fetch(`${ingress}/v1/functions/${square.name}/call`, {
      method: 'POST',
      headers: { authorization: `Bearer ${process.env['LFAAS_TOKEN'] ?? ''}`, 'content-type': 'application/json' },
      body: '[7]',
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    console.log(`  curl -H "Authorization: Bearer $(cat data/keys/admin.token)" -d '[7]' ${ingress}/v1/functions/square/call`);
    console.log(`    -> HTTP ${response.status} ${text}`);
    ok = response.status === 200 && text.trim() === '49' && ok;
  }

  try {
    await faas.call(divide, [1, 0]);
    console.log('  checked-divide(1, 0) returned: wrong, it should throw');
    ok = false;
  } catch (error) {
    if (!isLfaasError(error)) throw error;
    const frames = (error.remoteStack ?? '').split('\n').filter((line) => line.trim().startsWith('at ')).slice(0, 2);
    console.log(`\n  checked-divide(1, 0): ${error.code}: ${error.message}`);
    for (const frame of frames) console.log(`    ${frame.trim()}`);
    ok = error.code === ErrorCode.EXEC_USER_ERROR && frames.some((frame) => frame.includes('checked-divide.ts')) && ok;
  }

  const lines: string[] = [];
  for await (const record of faas.logs({ function: divide.name, sinceMs: Date.now() - 60_000 })) lines.push(`    ${record.level.padEnd(5)} ${record.callId}  ${record.text}`);
  console.log(`\n  what it logged (faas.logs, or lfaas logs ${divide.name}):`);
  for (const line of lines.slice(-2)) console.log(line);
  ok = lines.some((line) => line.includes('dividing 1 by 0')) && ok;

  const slow = await faas.register<(ms: number) => Promise<string>>('slow-wait', { code: SLOW_CODE });
  const future = await faas.callAsync(slow, [30_000]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const running = (await faas.invocations({ function: slow.name })).find((entry) => entry.callId === future.callId);
  const cancelled = await future.cancel();
  const outcome = await future.result({ timeoutMs: 10_000 }).then(
    (value) => `returned ${JSON.stringify(value)}`,
    (error: unknown) => (isLfaasError(error) ? error.code : String(error)),
  );
  console.log(`\n  slow-wait(30000) async, state ${running?.state ?? 'not listed yet'}; future.cancel() -> ${cancelled}; its result: ${outcome}`);
  ok = cancelled && outcome === ErrorCode.EXEC_CANCELLED && ok;

  const recent = await faas.invocations({ limit: 5 });
  console.log('\n  recent calls (faas.invocations, or lfaas invocations):');
  for (const entry of recent) console.log(`    ${entry.state.padEnd(10)} ${entry.name.padEnd(16)} ${entry.callId}  ${entry.durationMs.toFixed(1)} ms${entry.error === undefined ? '' : `  ${entry.error.code}`}`);
  console.log(ok ? '\n  every answer was as expected.' : '\n  wrong: an answer above is not what it should be: this is a bug');
  return ok;
}
