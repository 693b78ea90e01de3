using System.Buffers.Binary;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Groups;

/// <summary>A key/value pair of <c>__consumer_offsets</c>; a null value is a tombstone.</summary>
public readonly record struct CoordinatorRecord(byte[] Key, byte[]? Value);

/// <summary>A decoded <c>__consumer_offsets</c> record, as replay sees it.</summary>
public abstract record GroupLogEntry
{
    public sealed record Offset(string GroupId, TopicPartition Partition, CommittedOffset? Value) : GroupLogEntry;
    public sealed record Group(string GroupId, GroupMetadataValue? Value) : GroupLogEntry;
    /// <summary>An offset commit written inside a transaction (TxnOffsetCommit): pending until the
    /// producer's marker follows in the same partition.</summary>
    public sealed record TxnOffset(long ProducerId, Offset Commit) : GroupLogEntry;
    /// <summary>A COMMIT or ABORT marker of a producer's transaction.</summary>
    public sealed record TxnMarker(long ProducerId, bool Commit) : GroupLogEntry;
    /// <summary>A KIP-848 consumer group record (key versions 3, 5, 6, 7, 8); a null value is a tombstone.</summary>
    public sealed record ConsumerRecord(short KeyVersion, string GroupId, string? MemberId, IKafkaMessage? Value) : GroupLogEntry;
    /// <summary>A KIP-932 share group record (key versions 10-15, Share/ShareGroupRecords.cs); a null value is a tombstone.</summary>
    public sealed record ShareRecord(short KeyVersion, string GroupId, string? MemberId, IKafkaMessage? Value) : GroupLogEntry;
    /// <summary>A KIP-1071 streams group record (key versions 17, 19-23); a null value is a tombstone.</summary>
    public sealed record StreamsRecord(short KeyVersion, string GroupId, string? MemberId, IKafkaMessage? Value) : GroupLogEntry;
}

/// <summary>
/// The record formats of <c>__consumer_offsets</c>, byte for byte upstream's: key = int16 key
/// version + body (0/1 OffsetCommitKey, 2 GroupMetadataKey), value = int16 value version + body.
/// Upstream writes OffsetCommitValue v3 (v1 when the commit carries an explicit expiry) and
/// GroupMetadataValue v3; readers accept every version and parse a newer (flexible) one as the
/// newest known, skipping tagged fields they do not know (KIP-915).
/// </summary>
public static class GroupRecords
{
    public static CoordinatorRecord OffsetCommit(string groupId, TopicPartition tp, CommittedOffset offset)
    {
        var key = Encode(new OffsetCommitKey { Group = groupId, Topic = tp.Topic, Partition = tp.Partition }, 1);
        bool expiring = offset.ExpireTimestamp >= 0;
        var value = new OffsetCommitValue
        {
            Offset = offset.Offset, LeaderEpoch = offset.LeaderEpoch, Metadata = offset.Metadata,
            CommitTimestamp = offset.CommitTimestamp, ExpireTimestamp = offset.ExpireTimestamp,
        };
        return new CoordinatorRecord(key, Encode(value, expiring ? (short)1 : (short)3));
    }

    public static CoordinatorRecord OffsetTombstone(string groupId, TopicPartition tp) =>
        new(Encode(new OffsetCommitKey { Group = groupId, Topic = tp.Topic, Partition = tp.Partition }, 1), null);

    public static CoordinatorRecord GroupMetadata(ClassicGroup group, IReadOnlyDictionary<string, byte[]> assignment)
    {
        var value = new GroupMetadataValue
        {
            ProtocolType = group.ProtocolType ?? "",
            Generation = group.GenerationId,
            Protocol = group.ProtocolName,
            Leader = group.LeaderId,
            CurrentStateTimestamp = group.CurrentStateTimestamp,
        };
        foreach (var m in group.AllMembers)
        {
            value.Members.Add(new GroupMetadataValue.MemberMetadata
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                RebalanceTimeout = m.RebalanceTimeoutMs,
                SessionTimeout = m.SessionTimeoutMs,
                Subscription = group.ProtocolName is { } p ? m.MetadataFor(p) ?? [] : [],
                Assignment = assignment.GetValueOrDefault(m.MemberId) ?? [],
            });
        }
        return new CoordinatorRecord(Encode(new GroupMetadataKey { Group = group.GroupId }, 2), Encode(value, 3));
    }

    public static CoordinatorRecord GroupTombstone(string groupId) =>
        new(Encode(new GroupMetadataKey { Group = groupId }, 2), null);

    /// <summary>Decodes one record; null for key versions this coordinator does not own (the
    /// KIP-848/932 group types) — replay skips them. Throws KafkaProtocolException when malformed.</summary>
    public static GroupLogEntry? Decode(ReadOnlyMemory<byte> key, byte[]? value)
    {
        if (key.Length < 2) throw new KafkaProtocolException(ProtocolErrorKind.Truncated, "coordinator record key shorter than its version");
        short keyVersion = BinaryPrimitives.ReadInt16BigEndian(key.Span);
        var reader = new KafkaReader(key[2..]);
        switch (keyVersion)
        {
            case 0 or 1:
            {
                var k = OffsetCommitKey.Read(ref reader, keyVersion);
                CommittedOffset? offset = null;
                if (value is { } v)
                {
                    var (ver, body) = Version(v, OffsetCommitValue.HighestSupportedVersion);
                    var r = new KafkaReader(body);
                    var ov = OffsetCommitValue.Read(ref r, ver);
                    offset = new CommittedOffset(ov.Offset, ov.LeaderEpoch, ov.Metadata, ov.CommitTimestamp, ov.ExpireTimestamp);
                }
                return new GroupLogEntry.Offset(k.Group, new TopicPartition(k.Topic, k.Partition), offset);
            }
            case 2:
            {
                var k = GroupMetadataKey.Read(ref reader, keyVersion);
                GroupMetadataValue? gv = null;
                if (value is { } v)
                {
                    var (ver, body) = Version(v, GroupMetadataValue.HighestSupportedVersion);
                    var r = new KafkaReader(body);
                    gv = GroupMetadataValue.Read(ref r, ver);
                }
                return new GroupLogEntry.Group(k.Group, gv);
            }
            default:
                // KIP-932 share group records (key versions 9-15; 9 is read and ignored).
                if (keyVersion is >= Share.ShareGroupRecords.FirstKey and <= Share.ShareGroupRecords.LastKey)
                    return Share.ShareGroupRecords.Decode(keyVersion, key[2..], value);
                // KIP-1071 streams group records (17-23).
                if (Streams.StreamsGroupRecords.IsStreamsKey(keyVersion)) return Streams.StreamsGroupRecords.Decode(keyVersion, key[2..], value);
                // KIP-848 consumer group records (key versions 3-8); null for the other group types.
                return ConsumerGroupRecords.Decode(keyVersion, key[2..], value);
        }
    }

    internal static (short Version, ReadOnlyMemory<byte> Body) Version(ReadOnlyMemory<byte> value, short highest)
    {
        if (value.Length < 2) throw new KafkaProtocolException(ProtocolErrorKind.Truncated, "coordinator record value shorter than its version");
        short v = BinaryPrimitives.ReadInt16BigEndian(value.Span);
        if (v < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"negative record value version {v}");
        return (Math.Min(v, highest), value[2..]);
    }

    internal static byte[] Encode(IKafkaMessage message, short version)
    {
        var bytes = new byte[2 + message.Size(version)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, version);
        var writer = new KafkaWriter(bytes.AsSpan(2));
        message.Write(ref writer, version);
        return bytes;
    }
}

/// <summary>The "consumer" embedded protocol, read only as far as the coordinator needs it.</summary>
public static class ConsumerProtocol
{
    public const string ProtocolType = "consumer";

    /// <summary>Topics named by a ConsumerProtocolSubscription (int16 version + body), or null when the
    /// bytes do not parse. A version newer than known is read as the newest (upstream does the same).</summary>
    public static IReadOnlyList<string>? SubscribedTopics(byte[] metadata)
    {
        try
        {
            if (metadata.Length < 2) return null;
            short v = BinaryPrimitives.ReadInt16BigEndian(metadata);
            if (v < 0) return null;
            var reader = new KafkaReader(metadata.AsMemory(2));
            var s = ConsumerProtocolSubscription.Read(ref reader, Math.Min(v, ConsumerProtocolSubscription.HighestSupportedVersion));
            return s.Topics;
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }
}
