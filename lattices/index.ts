export { ErrorCode, LfaasError, isErrorCode, isRetryable, isLfaasError, errorFromWire, ensureLfaasError } from './errors.js';
export { LatticeType } from './lattice.js';
export type { Lattice, AnyLattice, Ordering, LatticeTypeName } from './lattice.js';
