using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol;

/// <summary>
/// A generated Kafka message (request, response, header or data record). Lets the broker
/// dispatch and encode messages without knowing their concrete type.
/// </summary>
public interface IKafkaMessage
{
    /// <summary>The API key of the message, or -1 for headers and data records.</summary>
    short ApiKey { get; }

    /// <summary>Encodes the message body at <paramref name="version"/>; the writer must have <see cref="Size"/> bytes of room.</summary>
    void Write(ref KafkaWriter writer, short version);

    /// <summary>Exact encoded size of the message body at <paramref name="version"/>.</summary>
    int Size(short version);
}

/// <summary>Static access to a generated message's decoder, for generic code.</summary>
public interface IKafkaMessage<TSelf> : IKafkaMessage where TSelf : IKafkaMessage<TSelf>
{
    static abstract TSelf Read(ref KafkaReader reader, short version);
}
