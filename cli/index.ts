/** The `lfaas` command line; `main.ts` is its entry point. The launcher is shared with the benches. */
export { waitForExecutors } from './up.js';
export { startRole, stopChildren } from './role-process.js';
export type { Started, StartRoleOptions } from './role-process.js';
export { Supervisor, portOf } from './supervisor.js';
export type { SupervisedRole } from './supervisor.js';
export { freePortRange, freePorts, reservePortRange } from './free-port.js';
export type { PortRange } from './free-port.js';
export { ExitCode, exitCodeOf } from './exit-codes.js';
export { portHolder } from './up-ports.js';
export { waitForRing } from './ring-ready.js';
export { ADMIN_TOKEN_FILE, keysInit, keysAdd, keysRevoke, keysRotateToken, readTokenKeys, tokenRevoke } from './keys-commands.js';
export { FolderTokenVerifier } from './token-trust.js';
export { LocalProvider } from './local-provider.js';
export { exampleFunctionPath } from './example-paths.js';
export { defaultMlDir, ensureMlInstalled, loadOnnxProto, mlInstalled, verifyNativeBinding } from './ml-install.js';
export type { MlInstallOptions } from './ml-install.js';
