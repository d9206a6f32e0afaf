/**
 * The OpenAPI 3.1 document of the ingress, written here by hand to match app.ts route for route
 * ({@link INGRESS_ROUTES} is the list both are checked against in the tests).
 */
import { ErrorCode } from '../lattices/index.js';
import { HTTP_STATUS_OF_CODE } from './errors.js';

/** Every route of the ingress: method and OpenAPI path. */
export const INGRESS_ROUTES = [
  { method: 'post', path: '/v1/functions/{name}/call' },
  { method: 'post', path: '/v1/functions/{name}/call-async' },
  { method: 'post', path: '/v1/dags/{name}/call' },
  { method: 'post', path: '/v1/dags/{name}/call-async' },
  { method: 'get', path: '/v1/calls/{callId}' },
  { method: 'get', path: '/v1/kvs/{key}' },
  { method: 'put', path: '/v1/kvs/{key}' },
  { method: 'delete', path: '/v1/kvs/{key}' },
  { method: 'get', path: '/v1/health' },
  { method: 'get', path: '/v1/openapi.json' },
] as const;

const json = (schema: object): object => ({ 'application/json': { schema }, 'application/msgpack': { schema } });
const ref = (name: string): object => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string): object => ({ description, content: { 'application/json': { schema: ref('Error') } } });

const COMMON_ERRORS = {
  '400': errorResponse('Malformed body or bad value (PROTO_MALFORMED, EXEC_BAD_VALUE, KVS_BAD_KEY, LATTICE_DECODE)'),
  '401': errorResponse('No token, or one that does not verify (UNAUTHORISED)'),
  '403': errorResponse('The token may not do this (UNAUTHORISED)'),
  '413': errorResponse('The body is larger than the limit (PROTO_TOO_LARGE)'),
  '415': errorResponse('A Content-Type the route does not take'),
  '503': errorResponse('The ingress or the cluster is busy, or unreachable (TRANSPORT_BUSY, SCHED_NO_CAPACITY, KVS_BUSY...); see Retry-After'),
  '504': errorResponse('The request or the call timed out (TRANSPORT_TIMEOUT, EXEC_TIMEOUT)'),
};

const CALL_ERRORS = {
  ...COMMON_ERRORS,
  '404': errorResponse('No such function or DAG (SCHED_FUNCTION_NOT_FOUND, SCHED_DAG_NOT_FOUND)'),
  '422': errorResponse('The function failed (EXEC_USER_ERROR, EXEC_OUT_OF_MEMORY, EXEC_LIMIT)'),
  '502': errorResponse('The executor running the call was lost (EXEC_LOST)'),
};

const nameParameter = (what: string): object => ({ name: 'name', in: 'path', required: true, description: `The ${what}'s name; an owner's names hold one "/" (alice/resize), written as is or percent-encoded`, schema: { type: 'string' } });

/** The document served at /v1/openapi.json. */
export function openApiDocument(): Record<string, unknown> {
  const callAsync = (what: string, body: object): object => ({
    summary: `Start a ${what} call; its result lands in the KVS`,
    requestBody: { required: false, content: json(body) },
    responses: { '202': { description: 'Accepted: the call id and where to read its result', headers: { Location: { schema: { type: 'string' } } }, content: json(ref('AsyncCall')) }, ...CALL_ERRORS },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Lattice FaaS HTTP ingress',
      version: '1',
      description: 'Calls, async calls and their results, DAG calls, and KVS reads and writes. JSON by default; msgpack with Content-Type/Accept: application/msgpack. Every error body is { error: { code, message, retryable } }.',
    },
    servers: [{ url: 'http://127.0.0.1:7080' }],
    security: [{ bearer: [] }],
    paths: {
      '/v1/functions/{name}/call': {
        post: {
          summary: 'Call a function and answer its result',
          parameters: [nameParameter('function')],
          requestBody: { required: false, content: json(ref('FunctionCall')) },
          responses: { '200': { description: "The function's result", content: json({}) }, ...CALL_ERRORS },
        },
      },
      '/v1/functions/{name}/call-async': { post: { ...callAsync('function', ref('FunctionCall')), parameters: [nameParameter('function')] } },
      '/v1/dags/{name}/call': {
        post: {
          summary: "Call a DAG and answer its sink's result",
          parameters: [nameParameter('DAG')],
          requestBody: { required: false, content: json(ref('DagCall')) },
          responses: { '200': { description: "The sink function's result", content: json({}) }, ...CALL_ERRORS },
        },
      },
      '/v1/dags/{name}/call-async': { post: { ...callAsync('DAG', ref('DagCall')), parameters: [nameParameter('DAG')] } },
      '/v1/calls/{callId}': {
        get: {
          summary: "An async call's result",
          parameters: [
            { name: 'callId', in: 'path', required: true, description: 'As call-async answered it (an owner\'s ids hold a "/")', schema: { type: 'string' } },
            { name: 'wait', in: 'query', required: false, description: 'Wait up to this many milliseconds for the result (long poll)', schema: { type: 'integer', minimum: 0 } },
          ],
          responses: { '200': { description: "The call's result", content: json({}) }, '202': { description: 'Not finished yet', content: { 'application/json': { schema: ref('Pending') } } }, ...CALL_ERRORS },
        },
      },
      '/v1/kvs/{key}': {
        parameters: [{ name: 'key', in: 'path', required: true, description: 'The key; an owner\'s keys start with "<owner>/"', schema: { type: 'string' } }],
        get: {
          summary: "A key's value (revealed), or its lattice bytes with Accept: application/vnd.lfaas.lattice",
          responses: {
            '200': { description: 'The value; its lattice type in the Lfaas-Lattice-Type header', headers: { 'Lfaas-Lattice-Type': { schema: { type: 'string' } } }, content: { ...json({}), 'application/vnd.lfaas.lattice': { schema: { type: 'string', format: 'binary' } } } },
            '404': errorResponse('No such key (KVS_KEY_NOT_FOUND)'),
            ...COMMON_ERRORS,
          },
        },
        put: {
          summary: 'Merge a value into a key: a plain value as an LWW register, ?type= another lattice, or a lattice in its own encoding',
          parameters: [
            { name: 'type', in: 'query', required: false, schema: { type: 'string', enum: ['lww', 'counter', 'gset', 'max', 'min', 'bool'], default: 'lww' } },
            { name: 'ack', in: 'query', required: false, schema: { type: 'string', enum: ['local', 'durable', 'replicated'], default: 'durable' } },
          ],
          requestBody: { required: true, content: { ...json({}), 'application/vnd.lfaas.lattice': { schema: { type: 'string', format: 'binary' } } } },
          responses: { '204': { description: 'Written' }, '409': errorResponse('The key holds another lattice type (KVS_LATTICE_MISMATCH)'), ...COMMON_ERRORS },
        },
        delete: {
          summary: 'Delete a key',
          parameters: [{ name: 'ack', in: 'query', required: false, schema: { type: 'string', enum: ['local', 'durable', 'replicated'], default: 'durable' } }],
          responses: { '204': { description: 'Deleted' }, ...COMMON_ERRORS },
        },
      },
      '/v1/health': {
        get: {
          summary: 'Whether the ingress reaches a scheduler and the KVS (no token needed)',
          security: [],
          responses: { '200': { description: 'Both answer', content: { 'application/json': { schema: ref('Health') } } }, '503': { description: 'One does not', content: { 'application/json': { schema: ref('Health') } } } },
        },
      },
      '/v1/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An owner token (lfaas token create; with lfaas up, the admin token in data/keys/admin.token)' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'retryable'],
              properties: {
                code: { type: 'string', enum: Object.values(ErrorCode) },
                message: { type: 'string' },
                retryable: { type: 'boolean' },
                retryAfterMs: { type: 'integer' },
              },
            },
          },
          description: `HTTP status by code: ${Object.entries(HTTP_STATUS_OF_CODE).map(([code, status]) => `${code} ${status}`).join(', ')} (UNAUTHORISED: 401 for a missing or invalid token)`,
        },
        CallOptions: {
          type: 'object',
          properties: {
            consistency: { type: 'string', enum: ['lww', 'repeatable-read', 'causal'] },
            timeoutMs: { type: 'integer', minimum: 1 },
          },
        },
        FunctionCall: {
          oneOf: [
            { type: 'array', description: 'The arguments' },
            { type: 'object', properties: { args: { type: 'array' }, version: { type: 'integer', minimum: 0 }, consistency: { type: 'string', enum: ['lww', 'repeatable-read', 'causal'] }, timeoutMs: { type: 'integer', minimum: 1 } }, additionalProperties: false },
          ],
        },
        DagCall: {
          oneOf: [
            { type: 'object', description: 'Per function, its arguments: {"increment": [1]}', additionalProperties: { type: 'array' } },
            { type: 'object', properties: { args: { type: 'object', additionalProperties: { type: 'array' } }, consistency: { type: 'string', enum: ['lww', 'repeatable-read', 'causal'] }, timeoutMs: { type: 'integer', minimum: 1 } }, required: ['args'] },
          ],
        },
        AsyncCall: { type: 'object', required: ['callId', 'resultUrl'], properties: { callId: { type: 'string' }, resultUrl: { type: 'string' } } },
        Pending: { type: 'object', required: ['status', 'callId'], properties: { status: { const: 'pending' }, callId: { type: 'string' } } },
        Health: { type: 'object', required: ['ok', 'scheduler', 'kvs'], properties: { ok: { type: 'boolean' }, scheduler: { type: 'boolean' }, kvs: { type: 'boolean' }, inFlight: { type: 'integer' } } },
      },
    },
  };
}
