using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Network;

/// <summary>
/// Fault injection for tests (Samsa.Testing): asked about every parsed request before its handler
/// runs. It may wait (a delay, a paused broker) and may answer in the handler's place, e.g. with a
/// response carrying an injected error code, in which case the handler never sees the request.
/// Null (the default, <see cref="KafkaBroker.RequestInterceptor"/>) costs one null check per request.
/// </summary>
public interface IRequestInterceptor
{
    /// <summary>Returns the response to send instead of handling the request, or null to handle it.
    /// <paramref name="cancellation"/> ends when the connection closes.</summary>
    ValueTask<IKafkaMessage?> InterceptAsync(RequestHeader header, IKafkaMessage request, CancellationToken cancellation);
}
