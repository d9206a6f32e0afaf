/**
 * Failpoints: faults a test can switch on in a real process to reach code paths no correct input
 * reaches (the crash guard, the supervisor's restart). Off unless the environment variable
 * LFAAS_FAILPOINTS names them (comma-separated), read once when the process starts; a process
 * with a failpoint on says so on stderr. None costs more than a set lookup when off.
 *
 * - `machine-throws`: an `echo` whose payload is the text FAILPOINT_MACHINE_THROWS makes the
 *   machine shell behave as if the machine had thrown (a bug): the crash guard decides.
 */
export const FAILPOINT_MACHINE_THROWS = 'lfaas-failpoint:machine-throws';

const enabled: ReadonlySet<string> = new Set(
  (typeof process === 'undefined' ? '' : (process.env['LFAAS_FAILPOINTS'] ?? ''))
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0),
);
if (enabled.size > 0) process.stderr.write(`lfaas: failpoints on (tests only): ${[...enabled].join(', ')}\n`);

/** Whether failpoint `name` is on in this process. */
export function failpointOn(name: 'machine-throws'): boolean {
  return enabled.has(name);
}
