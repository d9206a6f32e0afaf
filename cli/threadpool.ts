/**
 * Imported first by the `lfaas` entry, before anything can use libuv's thread pool (which reads
 * UV_THREADPOOL_SIZE once, at its first use). A role's disk commits, log writes and host-name
 * lookups share that pool, 4 threads by default. The wire fuzzer found a seed (1303736404) whose
 * hostile reply addresses left a storage node mute for more than 10 s with 4 or 8 threads and
 * served with 128; which jobs held the threads is not known yet (host-name lookups are bounded at
 * 2 per process). 64 threads cost address space, not memory, while they idle.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '64';
