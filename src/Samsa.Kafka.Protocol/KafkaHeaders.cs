using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol;

/// <summary>
/// Request/response header handling around a frame's body. A request header's own version
/// depends on the API key and version it carries, which sit in its first four bytes, so they
/// are peeked before the header is decoded.
/// </summary>
public static class KafkaHeaders
{
    /// <summary>
    /// Decodes the request header at the reader's position and leaves the reader at the body.
    /// An API key without a schema throws <see cref="ProtocolErrorKind.UnsupportedVersion"/>
    /// (upstream closes the connection then). A known key with an unsupported version still
    /// decodes, so the caller can answer with UNSUPPORTED_VERSION (and, for ApiVersions, the
    /// v0 response of KIP-511).
    /// </summary>
    public static RequestHeader ReadRequestHeader(ref KafkaReader reader, out short headerVersion)
    {
        var probe = reader; // copy: peeks without consuming
        short apiKey = probe.ReadInt16();
        short apiVersion = probe.ReadInt16();
        if (!ApiMessages.IsKnown(apiKey))
            throw new KafkaProtocolException(ProtocolErrorKind.UnsupportedVersion, $"unknown API key {apiKey}");
        headerVersion = ApiMessages.RequestHeaderVersion(apiKey, apiVersion);
        return RequestHeader.Read(ref reader, headerVersion);
    }

    /// <summary>Bytes of a response (header + body) for the given request, without the frame length prefix.</summary>
    public static int ResponseSize(short apiKey, short apiVersion, IKafkaMessage body)
    {
        short headerVersion = ApiMessages.ResponseHeaderVersion(apiKey, apiVersion);
        return (headerVersion >= 1 ? 5 : 4) + body.Size(apiVersion);
    }

    /// <summary>Writes response header (correlation id, plus an empty tagged-field section in v1) and body.</summary>
    public static void WriteResponse(ref KafkaWriter writer, int correlationId, short apiKey, short apiVersion, IKafkaMessage body)
    {
        short headerVersion = ApiMessages.ResponseHeaderVersion(apiKey, apiVersion);
        writer.WriteInt32(correlationId);
        if (headerVersion >= 1) writer.WriteUnsignedVarInt(0);
        body.Write(ref writer, apiVersion);
    }

    /// <summary>Encodes a response (header + body) into a new array; the network layer adds the length prefix.</summary>
    public static byte[] EncodeResponse(int correlationId, short apiKey, short apiVersion, IKafkaMessage body)
    {
        var buffer = new byte[ResponseSize(apiKey, apiVersion, body)];
        var writer = new KafkaWriter(buffer);
        WriteResponse(ref writer, correlationId, apiKey, apiVersion, body);
        return buffer;
    }
}
