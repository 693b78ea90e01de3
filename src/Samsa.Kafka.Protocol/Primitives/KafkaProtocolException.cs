namespace Samsa.Kafka.Protocol.Primitives;

/// <summary>What was wrong with bytes that failed to decode.</summary>
public enum ProtocolErrorKind
{
    /// <summary>The input ended before the value did.</summary>
    Truncated,
    /// <summary>A length or count was negative where that is not allowed (or below -1 for nullable).</summary>
    NegativeLength,
    /// <summary>A length or count claims more bytes than the frame holds, or more than a configured limit.</summary>
    LengthExceedsInput,
    /// <summary>The bytes are well-framed but not a valid value (bad varint, bad UTF-8, bad enum).</summary>
    Malformed,
    /// <summary>A checksum did not match.</summary>
    CorruptChecksum,
    /// <summary>An API key, message version or record format that is not supported.</summary>
    UnsupportedVersion,
    /// <summary>A compression codec that is unknown or whose data cannot be decoded.</summary>
    Compression,
}

/// <summary>
/// The single exception type the protocol layer throws for bad input. Callers map it to the
/// protocol's own error (CORRUPT_MESSAGE, INVALID_REQUEST, UNSUPPORTED_VERSION...) or close the connection.
/// </summary>
public sealed class KafkaProtocolException : Exception
{
    public KafkaProtocolException(ProtocolErrorKind kind, string message) : base(message) => Kind = kind;

    public KafkaProtocolException(ProtocolErrorKind kind, string message, Exception inner) : base(message, inner) => Kind = kind;

    public ProtocolErrorKind Kind { get; }

    public static KafkaProtocolException Truncated(string what) =>
        new(ProtocolErrorKind.Truncated, $"input ended while reading {what}");

    public static KafkaProtocolException TooLong(string what, long claimed, long available) =>
        new(ProtocolErrorKind.LengthExceedsInput, $"{what} claims {claimed} bytes but only {available} remain");

    public static KafkaProtocolException Negative(string what, long value) =>
        new(ProtocolErrorKind.NegativeLength, $"{what} has invalid length {value}");
}
