/**
 * Deploys Retwis: registers its six functions (each bundled from its module beside this file)
 * and resolves with their typed handles, for the tests, the demo and the benchmark alike.
 *
 * @example
 * ```ts
 * const retwis = await deployRetwis(faas);
 * await faas.call(retwis.register, ['ada', 'Ada Lovelace']);
 * await faas.call(retwis.timeline, ['ada', 20], { consistency: 'causal' });
 * ```
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FunctionHandle, LatticeFaas, RegisterOptions } from '../../client/index.js';
import type follow from './follow.js';
import type post from './post.js';
import type profile from './profile.js';
import type registerUser from './register-user.js';
import type timeline from './timeline.js';
import type unfollow from './unfollow.js';

export const RETWIS_FUNCTIONS = {
  register: 'retwis-register',
  follow: 'retwis-follow',
  unfollow: 'retwis-unfollow',
  post: 'retwis-post',
  timeline: 'retwis-timeline',
  profile: 'retwis-profile',
} as const;

export interface RetwisHandles {
  readonly register: FunctionHandle<typeof registerUser, 'retwis-register'>;
  readonly follow: FunctionHandle<typeof follow, 'retwis-follow'>;
  readonly unfollow: FunctionHandle<typeof unfollow, 'retwis-unfollow'>;
  readonly post: FunctionHandle<typeof post, 'retwis-post'>;
  readonly timeline: FunctionHandle<typeof timeline, 'retwis-timeline'>;
  readonly profile: FunctionHandle<typeof profile, 'retwis-profile'>;
}

/** The module of function `file` (without extension): the TypeScript source, or the compiled file when run from dist/. */
export function retwisModule(file: string): string {
  const source = fileURLToPath(new URL(`./${file}.ts`, import.meta.url));
  return existsSync(source) ? source : fileURLToPath(new URL(`./${file}.js`, import.meta.url));
}

/** Registers every Retwis function (a new version of each) with `options` and resolves with their handles. */
export async function deployRetwis(faas: LatticeFaas, options: RegisterOptions = {}): Promise<RetwisHandles> {
  const [register, followHandle, unfollowHandle, postHandle, timelineHandle, profileHandle] = await Promise.all([
    faas.register<typeof registerUser, 'retwis-register'>(RETWIS_FUNCTIONS.register, retwisModule('register-user'), options),
    faas.register<typeof follow, 'retwis-follow'>(RETWIS_FUNCTIONS.follow, retwisModule('follow'), options),
    faas.register<typeof unfollow, 'retwis-unfollow'>(RETWIS_FUNCTIONS.unfollow, retwisModule('unfollow'), options),
    faas.register<typeof post, 'retwis-post'>(RETWIS_FUNCTIONS.post, retwisModule('post'), options),
    faas.register<typeof timeline, 'retwis-timeline'>(RETWIS_FUNCTIONS.timeline, retwisModule('timeline'), options),
    faas.register<typeof profile, 'retwis-profile'>(RETWIS_FUNCTIONS.profile, retwisModule('profile'), options),
  ]);
  return { register, follow: followHandle, unfollow: unfollowHandle, post: postHandle, timeline: timelineHandle, profile: profileHandle };
}

// The data model and result types, so a user of Retwis (a test, the demo, the benchmark, the
// anomaly checker) needs this one module.
export { FLAG_WRITER, PREFIX, USERS_KEY, CLOCK_KEY, userKey, followingKey, followersKey, postKey, postsKey, repliesKey, parseIndexEntry } from './model.js';
export type { FollowSession, FollowState, PostRecord, PostView, Stamp, UserRecord } from './model.js';
export type { FollowResult } from './follow.js';
export type { Timeline } from './timeline.js';
export type { Profile } from './profile.js';
export { checkHistory } from './checker.js';
export type { CheckResult, HistoryEvent, Violation } from './checker.js';
export { RETWIS_MIX, RetwisDriver, seededRandom, zipfFollowGraph, zipfSampler } from './workload.js';
export type { DriverOptions, OperationKind, OperationStats, RetwisApi } from './workload.js';
