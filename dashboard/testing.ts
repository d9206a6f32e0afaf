/**
 * Test support for the dashboard (tests only): an OTLP/HTTP JSON ExportTraceServiceRequest as
 * @opentelemetry/exporter-trace-otlp-http encodes it (hex ids, times as decimal nanoseconds).
 */

export interface TestSpan {
  readonly spanId: string;
  readonly parent?: string;
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly error?: boolean;
}

/** The body posting `spans` of trace `traceId` from `service`. */
export function otlpBody(traceId: string, spans: readonly TestSpan[], service = 'scheduler'): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            scope: { name: 'lattice-faas' },
            spans: spans.map((span) => ({
              traceId,
              spanId: span.spanId,
              ...(span.parent === undefined ? {} : { parentSpanId: span.parent }),
              name: span.name,
              kind: 1,
              startTimeUnixNano: String(BigInt(span.startMs) * 1_000_000n),
              endTimeUnixNano: String(BigInt(span.endMs) * 1_000_000n),
              attributes: [{ key: 'faas.function', value: { stringValue: 'square' } }, { key: 'faas.version', value: { intValue: '1' } }],
              status: { code: span.error === true ? 2 : 0 },
            })),
          },
        ],
      },
    ],
  };
}
