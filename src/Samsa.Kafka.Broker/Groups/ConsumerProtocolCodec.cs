using System.Buffers.Binary;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>What a classic consumer says in its JoinGroup protocol metadata (ConsumerProtocolSubscription).</summary>
public sealed record ClassicSubscription(short Version, IReadOnlyList<string> Topics, IReadOnlyList<(string Topic, int Partition)> Owned, string? RackId);

/// <summary>
/// The "consumer" embedded protocol as a mixed group needs it: the coordinator reads a classic
/// member's subscription (topics, owned partitions, rack) and writes its assignment, at the version
/// the member used (upstream's ConsumerProtocol.deserializeConsumerProtocolSubscription /
/// serializeAssignment with deserializeVersion).
/// </summary>
public static class ConsumerProtocolCodec
{
    /// <summary>Null when the bytes are not a consumer subscription.</summary>
    public static ClassicSubscription? ReadSubscription(byte[] metadata)
    {
        try
        {
            if (metadata.Length < 2) return null;
            short v = BinaryPrimitives.ReadInt16BigEndian(metadata);
            if (v < 0) return null;
            var reader = new KafkaReader(metadata.AsMemory(2));
            var s = ConsumerProtocolSubscription.Read(ref reader, Math.Min(v, ConsumerProtocolSubscription.HighestSupportedVersion));
            var owned = s.OwnedPartitions.SelectMany(t => t.Partitions.Select(p => (t.Topic, p))).ToList();
            return new ClassicSubscription(v, s.Topics, owned, s.RackId);
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }

    /// <summary>Null when the bytes are not a consumer assignment; an empty array is no assignment.</summary>
    public static IReadOnlyList<(string Topic, int Partition)>? ReadAssignment(byte[] assignment)
    {
        if (assignment.Length == 0) return [];
        try
        {
            if (assignment.Length < 2) return null;
            short v = BinaryPrimitives.ReadInt16BigEndian(assignment);
            if (v < 0) return null;
            var reader = new KafkaReader(assignment.AsMemory(2));
            var a = ConsumerProtocolAssignment.Read(ref reader, Math.Min(v, ConsumerProtocolAssignment.HighestSupportedVersion));
            return a.AssignedPartitions.SelectMany(t => t.Partitions.Select(p => (t.Topic, p))).ToList();
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }

    /// <summary>An assignment in the version of the member's subscription (capped at the newest known).</summary>
    public static byte[] WriteAssignment(IEnumerable<(string Topic, IReadOnlyCollection<int> Partitions)> partitions, short version)
    {
        short v = Math.Clamp(version, (short)0, ConsumerProtocolAssignment.HighestSupportedVersion);
        var a = new ConsumerProtocolAssignment();
        foreach (var (topic, ps) in partitions.OrderBy(x => x.Topic, StringComparer.Ordinal))
            a.AssignedPartitions.Add(new ConsumerProtocolAssignment.TopicPartition { Topic = topic, Partitions = ps.Order().ToList() });
        var bytes = new byte[2 + a.Size(v)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, v);
        var writer = new KafkaWriter(bytes.AsSpan(2));
        a.Write(ref writer, v);
        return bytes;
    }

    /// <summary>The version a member's first protocol metadata starts with (0 when unreadable).</summary>
    public static short VersionOf(IReadOnlyList<MemberProtocol> protocols) =>
        protocols.Count > 0 && protocols[0].Metadata.Length >= 2 ? Math.Max((short)0, BinaryPrimitives.ReadInt16BigEndian(protocols[0].Metadata)) : (short)0;
}
