using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Broker.Log;

namespace Samsa.Kafka.Broker.Transactions;

/// <summary>The states of a transactional id, with the byte values upstream writes in
/// TransactionLogValue.TransactionStatus.</summary>
public enum TransactionState : sbyte
{
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

/// <summary>What the coordinator knows about one transactional id (upstream TransactionMetadata).</summary>
public sealed class TransactionMetadata(string transactionalId)
{
    public string TransactionalId { get; } = transactionalId;
    public long ProducerId { get; set; } = -1;
    /// <summary>The producer id before the last rotation (epoch exhaustion), so a retried
    /// InitProducerId of the rotation is recognised (KIP-360).</summary>
    public long PreviousProducerId { get; set; } = -1;
    public short ProducerEpoch { get; set; } = -1;
    /// <summary>The epoch before the last bump; kept in memory only, as upstream does, to answer a
    /// retried InitProducerId with the epoch it already handed out.</summary>
    public short LastProducerEpoch { get; set; } = -1;
    public int TxnTimeoutMs { get; set; }
    public TransactionState State { get; set; } = TransactionState.Empty;
    public HashSet<TopicPartition> Partitions { get; } = [];
    public long TxnStartTimestamp { get; set; } = -1;
    public long TxnLastUpdateTimestamp { get; set; }
    /// <summary>Partitions whose marker for the decided transaction is written (in memory only: a
    /// reloaded coordinator writes every marker again, as upstream does).</summary>
    public HashSet<TopicPartition> MarkedPartitions { get; } = [];
    /// <summary>The transaction version the current transaction runs under (upstream
    /// clientTransactionVersion): 2 when a KIP-890 part 2 producer (EndTxn v5, Produce v12+, broker
    /// AddPartitionsToTxn that adds) drives it, so EndTxn bumps the epoch; 0 otherwise.</summary>
    public short ClientTransactionVersion { get; set; }
    /// <summary>Transaction version 2 only: the producer id the transaction continues under once its
    /// markers are written, when the epoch bump of EndTxn exhausted the current id's epochs (-1 otherwise).</summary>
    public long NextProducerId { get; set; } = -1;

    public bool SupportsEpochBump => ClientTransactionVersion >= 2;

    /// <summary>Upstream refuses to bump an epoch past Short.MaxValue - 1 and rotates the producer id instead.</summary>
    public bool IsEpochExhausted => ProducerEpoch >= short.MaxValue - 1;

    public static bool IsEpochExhaustedValue(short epoch) => epoch >= short.MaxValue - 1;
}
