using System.Buffers.Binary;
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>A decoded <c>__transaction_state</c> record: the id and its state, or null for a tombstone.</summary>
public sealed record TransactionLogEntry(string TransactionalId, TransactionLogValue? Value);

/// <summary>
/// The record formats of <c>__transaction_state</c>, byte for byte upstream's: key = int16 version 0 +
/// TransactionLogKey; value = int16 version + TransactionLogValue. The value version follows the
/// cluster's finalized transaction.version, not the transaction's (upstream TransactionLog.valueToBytes
/// with TransactionStateManager.transactionVersionLevel(): TransactionVersion.transactionLogValueVersion
/// is 0 at level 0 and 1 — flexible, with the tagged PreviousProducerId, NextProducerId and
/// ClientTransactionVersion — from level 1). At level 0 a version-2 transaction's tagged fields are
/// therefore not written, as upstream. Readers accept both and skip tagged fields they do not know.
/// </summary>
public static class TransactionRecords
{
    public const short KeyVersion = 0;
    public const short ValueVersion = 0;
    public const short ValueVersionTv2 = 1;

    public static byte[] Key(string transactionalId)
    {
        var key = new TransactionLogKey { TransactionalId = transactionalId };
        var bytes = new byte[2 + key.Size(KeyVersion)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, KeyVersion);
        var w = new KafkaWriter(bytes.AsSpan(2));
        key.Write(ref w, KeyVersion);
        return bytes;
    }

    /// <summary>The value for <paramref name="m"/> as a broker at finalized transaction.version
    /// <paramref name="transactionVersionLevel"/> writes it.</summary>
    public static byte[] Value(TransactionMetadata m, short transactionVersionLevel)
    {
        var value = new TransactionLogValue
        {
            ProducerId = m.ProducerId,
            ProducerEpoch = m.ProducerEpoch,
            TransactionTimeoutMs = m.TxnTimeoutMs,
            TransactionStatus = (sbyte)m.State,
            // Upstream writes no partition list for Empty, and the partitions otherwise.
            TransactionPartitions = m.State == TransactionState.Empty ? null
                : m.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => new TransactionLogValue.PartitionsSchema { Topic = g.Key, PartitionIds = g.Select(p => p.Partition).Order().ToList() })
                    .ToList(),
            TransactionLastUpdateTimestampMs = m.TxnLastUpdateTimestamp,
            TransactionStartTimestampMs = m.TxnStartTimestamp,
        };
        short version = transactionVersionLevel >= 1 ? ValueVersionTv2 : ValueVersion;
        if (version >= ValueVersionTv2)
        {
            value.PreviousProducerId = m.PreviousProducerId;
            value.NextProducerId = m.NextProducerId;
            value.ClientTransactionVersion = m.ClientTransactionVersion;
        }
        var bytes = new byte[2 + value.Size(version)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, version);
        var w = new KafkaWriter(bytes.AsSpan(2));
        value.Write(ref w, version);
        return bytes;
    }

    /// <summary>Decodes one record; null when the key is not a transaction log key this coordinator knows.
    /// Throws KafkaProtocolException on malformed bytes.</summary>
    public static TransactionLogEntry? Decode(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        if (key.Length < 2) throw new KafkaProtocolException(ProtocolErrorKind.Truncated, "transaction log key shorter than its version");
        short keyVersion = BinaryPrimitives.ReadInt16BigEndian(key.Span);
        if (keyVersion != KeyVersion) return null;
        var kr = new KafkaReader(key[2..]);
        var k = TransactionLogKey.Read(ref kr, keyVersion);
        if (value is not { } v) return new TransactionLogEntry(k.TransactionalId, null);
        if (v.Length < 2) throw new KafkaProtocolException(ProtocolErrorKind.Truncated, "transaction log value shorter than its version");
        short valueVersion = BinaryPrimitives.ReadInt16BigEndian(v.Span);
        if (valueVersion < 0) throw new KafkaProtocolException(ProtocolErrorKind.Malformed, $"transaction log value version {valueVersion}");
        // KIP-915: a newer value version is read as the newest known one (new fields are tagged).
        short readAs = Math.Min(valueVersion, TransactionLogValue.HighestSupportedVersion);
        var vr = new KafkaReader(v[2..]);
        return new TransactionLogEntry(k.TransactionalId, TransactionLogValue.Read(ref vr, readAs));
    }

    public static IEnumerable<TopicPartition> PartitionsOf(TransactionLogValue v) =>
        v.TransactionPartitions is null ? [] : v.TransactionPartitions.SelectMany(t => t.PartitionIds.Select(p => new TopicPartition(t.Topic, p)));
}
