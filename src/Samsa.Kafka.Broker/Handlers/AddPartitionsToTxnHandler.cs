// AddPartitionsToTxn (key 24), versions 0-5.
//
// Behaviour (KafkaApis.handleAddPartitionsToTxnRequest): the producer's open transaction gains the
// partitions (the first call starts the transaction). Partitions that do not exist get
// UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED; otherwise each gets the
// coordinator's answer: INVALID_PRODUCER_ID_MAPPING (unknown id or other producer id),
// PRODUCER_FENCED (older epoch; INVALID_PRODUCER_EPOCH below v2, KIP-588), CONCURRENT_TRANSACTIONS
// while the previous transaction completes, COORDINATOR_LOAD_IN_PROGRESS while loading.
// v4+ is the broker-to-broker batched form (KIP-890, upstream handleAddPartitionsToTxnRequest for
// version > 3): a partition leader's request for several transactional ids at once. VerifyOnly
// asks whether the partitions are already in each transaction (NONE, or TRANSACTION_ABORTABLE —
// INVALID_TXN_STATE in v4 — for one that is not; nothing is written); without it the partitions
// are added for a transaction version 2 producer (Produce v12+, TxnOffsetCommit v5) — v4+ is version
// 2 and v0-v3 version 0 whatever transaction.version is finalized (upstream
// TransactionVersion.transactionVersionForAddPartitionsToTxn). A transaction
// with an empty transactional id gets INVALID_REQUEST; errors that concern the id (unknown producer
// id, fenced epoch, completing transaction, not the coordinator) are set on every partition.
// Needs CLUSTER_ACTION (top-level CLUSTER_AUTHORIZATION_FAILED otherwise).
// Authorization (KafkaApis.handleAddPartitionsToTxnRequest, v0-3): TRANSACTIONAL_ID WRITE (every
// partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then TOPIC WRITE per topic
// (TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED).
using Samsa.Kafka.Broker.Log;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AddPartitionsToTxnHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AddPartitionsToTxnRequest request)
    {
        short v = context.ApiVersion;
        if (v >= 4) return ValueTask.FromResult<IKafkaMessage?>(HandleBatched(context, request));
        var partitions = new List<TopicPartition>();
        foreach (var t in request.V3AndBelowTopics)
            foreach (var p in t.Partitions) partitions.Add(new TopicPartition(t.Name, p));
        Dictionary<TopicPartition, ErrorCode> results;
        var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Write, request.V3AndBelowTopics.Select(t => t.Name));
        if (!Security.Acl.Authz.TransactionalId(context, Security.Acl.AclOperation.Write, request.V3AndBelowTransactionalId))
            results = partitions.Distinct().ToDictionary(tp => tp, _ => ErrorCode.TransactionalIdAuthorizationFailed);
        else if (denied.Count > 0 || partitions.Any(tp => context.Broker.Replicas.GetTopic(tp.Topic) is null))
        {
            // Upstream: nothing is added when a topic is unauthorized or unknown; the rest are
            // OPERATION_NOT_ATTEMPTED.
            results = partitions.Distinct().ToDictionary(tp => tp, tp =>
                denied.Contains(tp.Topic) ? ErrorCode.TopicAuthorizationFailed
                : context.Broker.Replicas.GetPartition(tp.Topic, tp.Partition) is null ? ErrorCode.UnknownTopicOrPartition
                : ErrorCode.OperationNotAttempted);
        }
        else
            results = context.Broker.Transactions.Coordinator.AddPartitionsToTxn(request.V3AndBelowTransactionalId,
                request.V3AndBelowProducerId, request.V3AndBelowProducerEpoch, partitions.Distinct().ToList());
        var response = new AddPartitionsToTxnResponse();
        foreach (var t in request.V3AndBelowTopics)
        {
            var tr = new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult { Name = t.Name };
            response.ResultsByTopicV3AndBelow.Add(tr);
            foreach (var p in t.Partitions.Distinct())
            {
                var error = results.GetValueOrDefault(new TopicPartition(t.Name, p), ErrorCode.None);
                if (error == ErrorCode.ProducerFenced && v < 2) error = ErrorCode.InvalidProducerEpoch;
                tr.ResultsByPartition.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = p, PartitionErrorCode = (short)error });
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static AddPartitionsToTxnResponse HandleBatched(RequestContext context, AddPartitionsToTxnRequest request)
    {
        var response = new AddPartitionsToTxnResponse();
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.ClusterAction))
        {
            response.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            return response;
        }
        var service = context.Broker.Transactions;
        foreach (var txn in request.Transactions)
        {
            var partitions = txn.Topics.SelectMany(t => t.Partitions.Select(p => new TopicPartition(t.Name, p))).Distinct().ToList();
            var results = service.LocalVerifyOrAdd(txn.TransactionalId, txn.ProducerId, txn.ProducerEpoch, partitions, add: !txn.VerifyOnly);
            var result = new AddPartitionsToTxnResponse.AddPartitionsToTxnResult { TransactionalId = txn.TransactionalId };
            response.ResultsByTransaction.Add(result);
            foreach (var t in txn.Topics)
            {
                var tr = new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult { Name = t.Name };
                result.TopicResults.Add(tr);
                foreach (int p in t.Partitions.Distinct())
                {
                    var error = results.GetValueOrDefault(new TopicPartition(t.Name, p), ErrorCode.None);
                    // TRANSACTION_ABORTABLE exists from v5 (KIP-890).
                    if (error == ErrorCode.TransactionAbortable && context.ApiVersion < 5) error = ErrorCode.InvalidTxnState;
                    tr.ResultsByPartition.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = p, PartitionErrorCode = (short)error });
                }
            }
        }
        return response;
    }
}
