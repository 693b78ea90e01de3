// DescribeProducers (key 61), version 0 (KIP-664).
//
// Behaviour (KafkaApis.handleDescribeProducersRequest): per partition, the idempotent and
// transactional producers its log knows — id, epoch, last sequence, last timestamp, coordinator
// epoch and the first offset of the open transaction (-1 when none). Unknown partitions get
// UNKNOWN_TOPIC_OR_PARTITION.
// The coordinator epoch is that of the producer's last COMMIT/ABORT marker in the partition (-1
// before its first). Differences from upstream: in-memory logs (brokers without log.dirs) keep no producer state, so they list no producers.
// Authorization (KafkaApis.handleDescribeProducersRequest): TOPIC READ (TOPIC_AUTHORIZATION_FAILED).
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeProducersHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeProducersRequest request)
    {
        var response = new DescribeProducersResponse();
        foreach (var t in request.Topics)
        {
            var tr = new DescribeProducersResponse.TopicResponse { Name = t.Name };
            response.Topics.Add(tr);
            foreach (int index in t.PartitionIndexes)
            {
                var pr = new DescribeProducersResponse.PartitionResponse { PartitionIndex = index };
                tr.Partitions.Add(pr);
                if (!Security.Acl.Authz.Topic(context, Security.Acl.AclOperation.Read, t.Name))
                {
                    pr.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    pr.ErrorMessage = "Topic authorization failed.";
                    continue;
                }
                var partition = context.Broker.Replicas.GetPartition(t.Name, index);
                if (partition is null)
                {
                    pr.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    pr.ErrorMessage = "This server does not host this topic-partition.";
                    continue;
                }
                foreach (var p in partition.Log.Producers().OrderBy(p => p.ProducerId))
                {
                    pr.ActiveProducers.Add(new DescribeProducersResponse.ProducerState
                    {
                        ProducerId = p.ProducerId, ProducerEpoch = p.ProducerEpoch, LastSequence = p.LastSequence,
                        LastTimestamp = p.LastTimestamp, CoordinatorEpoch = p.CoordinatorEpoch, CurrentTxnStartOffset = p.CurrentTxnStartOffset,
                    });
                }
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
