using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Network;

/// <summary>
/// Fault injection for tests (Samsa.Testing): wraps every parsed request's handling. It may wait (a
/// delay, a paused broker), answer in the handler's place (a response carrying an injected error
/// code; the handler never sees the request), or run the handler and change its answer (Metadata
/// errors keep the real broker list, as a broker answering LEADER_NOT_AVAILABLE does).
/// Null (the default, <see cref="KafkaBroker.RequestInterceptor"/>) costs one null check per request.
/// </summary>
public interface IRequestInterceptor
{
    /// <summary>Returns the response to send. <paramref name="handle"/> runs the broker's own handler
    /// (at most once); <paramref name="cancellation"/> ends when the connection closes.</summary>
    ValueTask<IKafkaMessage?> InterceptAsync(RequestHeader header, IKafkaMessage request, Func<ValueTask<IKafkaMessage?>> handle, CancellationToken cancellation);
}
