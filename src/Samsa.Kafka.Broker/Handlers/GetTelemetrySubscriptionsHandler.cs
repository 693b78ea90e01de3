// GetTelemetrySubscriptions (key 71), version 0 (KIP-714).
//
// Behaviour (upstream ClientMetricsManager.processGetTelemetrySubscriptionRequest): a zero
// ClientInstanceId gets a new id; the client instance's subscription is the union of the
// client-metrics subscriptions whose match patterns all match it (client id, instance id, software
// name and version from ApiVersions v3+, source address and port), "*" alone when one asks for
// every metric, pushed at the smallest matching interval (300000 ms when none matches, with no
// metrics requested). The answer carries the subscription id (the same on every broker for the
// same subscription set), the accepted codecs (zstd, lz4, gzip, snappy), telemetry.max.bytes
// (1 MiB) and delta temporality. A second request within the push interval is
// THROTTLING_QUOTA_EXCEEDED, unless the subscriptions changed meanwhile or the last push failed
// with UNKNOWN_SUBSCRIPTION_ID / UNSUPPORTED_COMPRESSION_TYPE.
// No authorization (upstream checks none).
// Differences from upstream: upstream advertises KIP-714 only when a metrics reporter
// implementing ClientTelemetry is configured (and never in ZooKeeper mode); Samsa always serves
// it, with its in-memory store of pushed metrics as the receiver (Telemetry/ClientTelemetry).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class GetTelemetrySubscriptionsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, GetTelemetrySubscriptionsRequest request) =>
        ValueTask.FromResult<IKafkaMessage?>(context.Broker.ClientTelemetry.GetSubscriptions(context, request));
}
