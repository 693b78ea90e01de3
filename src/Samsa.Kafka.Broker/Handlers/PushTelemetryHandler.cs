// PushTelemetry (key 72), version 0 (KIP-714).
//
// Behaviour (upstream ClientMetricsManager.processPushTelemetryRequest): a zero client instance
// id is INVALID_REQUEST; a push after the instance's terminating push is INVALID_REQUEST; a push
// sooner than the push interval after the previous one (the first push after a
// GetTelemetrySubscriptions is always on time) is THROTTLING_QUOTA_EXCEEDED unless it is the
// terminating push; a subscription id that is not the instance's current one (the subscriptions
// changed, or the client skipped the get) is UNKNOWN_SUBSCRIPTION_ID; an unknown codec
// UNSUPPORTED_COMPRESSION_TYPE; a payload above telemetry.max.bytes TELEMETRY_TOO_LARGE. The
// payload is decompressed with the broker's record codecs and read as an OTLP MetricsData
// protobuf (metric names, data point count, last gauge/sum values); one that does not decode is
// INVALID_RECORD, what upstream answers when its receiver plugin throws.
// No authorization (upstream checks none).
// Differences from upstream: the receiver is Samsa's in-memory view of each client instance's
// latest push (ClientTelemetry.Latest) plus a log line at an instance's first and terminating
// pushes, not a ClientTelemetry metrics reporter plugin; client instances are dropped after
// max(60 s, 3 push intervals) without requests, not also when their connection closes.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class PushTelemetryHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, PushTelemetryRequest request) =>
        ValueTask.FromResult<IKafkaMessage?>(context.Broker.ClientTelemetry.Push(context, request));
}
