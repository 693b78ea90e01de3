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

    /// <summary>Hands the fields <paramref name="version"/> carries to <paramref name="visitor"/> (the broker's request tap).</summary>
    void Accept(IKafkaMessageVisitor visitor, short version);
}

/// <summary>Static access to a generated message's decoder, for generic code.</summary>
public interface IKafkaMessage<TSelf> : IKafkaMessage where TSelf : IKafkaMessage<TSelf>
{
    static abstract TSelf Read(ref KafkaReader reader, short version);
}

/// <summary>Whole-buffer helpers for generated messages (coordinator records, embedded protocols, tests).</summary>
public static class KafkaMessage
{
    /// <summary>Encodes <paramref name="message"/> at <paramref name="version"/> into a new array of exactly its size.</summary>
    public static byte[] Encode(IKafkaMessage message, short version)
    {
        var buffer = new byte[message.Size(version)];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        return buffer;
    }

    /// <summary>Decodes a message that must fill <paramref name="bytes"/> exactly; trailing bytes are malformed input.</summary>
    public static T Decode<T>(ReadOnlyMemory<byte> bytes, short version) where T : IKafkaMessage<T>
    {
        var reader = new KafkaReader(bytes);
        var message = T.Read(ref reader, version);
        if (reader.Remaining != 0)
            throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"{typeof(T).Name} v{version} left {reader.Remaining} trailing bytes");
        return message;
    }
}

/// <summary>A generated message with a top-level int32 throttle_time_ms field (emitted by the
/// generator), so that code can set the throttle time without reflection.</summary>
public interface IThrottleTimeMessage : IKafkaMessage
{
    int ThrottleTimeMs { get; set; }

    /// <summary>Whether <paramref name="version"/> of the message carries throttle_time_ms.</summary>
    bool HasThrottleTime(short version);
}
