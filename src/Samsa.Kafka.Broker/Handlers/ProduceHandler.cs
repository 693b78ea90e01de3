// Produce (key 0), versions 0-11.
//
// Behaviour (KafkaApis.handleProduceRequest + ReplicaManager.appendRecords): acks must be -1, 0
// or 1 (INVALID_REQUIRED_ACKS otherwise). Per partition: unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION; internal topics refuse client writes (INVALID_TOPIC_EXCEPTION);
// acks=-1 with min.insync.replicas above the ISR size NOT_ENOUGH_REPLICAS; then the records are
// validated and stamped (CRC, size, timestamps, compression.type, LogAppendTime — see
// ProduceValidator) and appended. acks=0 gets no response, and when any partition failed the
// connection is closed so the client notices, as upstream does.
// With one replica, acks=-1 is satisfied as soon as the leader appended, so no request waits in
// a produce purgatory.
// Differences from upstream: message-format v0/v1 data (produce v0-v2 of old clients) is refused
// with UNSUPPORTED_FOR_MESSAGE_FORMAT instead of being converted; idempotent/transactional
// producer state (sequence checks) is not kept.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ProduceHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ProduceRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        var response = new ProduceResponse();
        bool anyError = false;
        bool validAcks = request.Acks is -1 or 0 or 1;
        foreach (var topicData in request.TopicData)
        {
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topicData.Name };
            response.Responses.Add(topicResponse);
            var topic = broker.Replicas.GetTopic(topicData.Name);
            foreach (var pd in topicData.PartitionData)
            {
                var pr = new ProduceResponse.PartitionProduceResponse { Index = pd.Index, BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 };
                topicResponse.PartitionResponses.Add(pr);
                var partition = topic is null ? null : broker.Replicas.GetPartition(topic.Name, pd.Index);
                ErrorCode error;
                string? message = null;
                if (!validAcks) error = ErrorCode.InvalidRequiredAcks;
                else if (partition is null) error = ErrorCode.UnknownTopicOrPartition;
                else if (TopicName.IsInternal(topicData.Name)) { error = ErrorCode.InvalidTopicException; message = $"Cannot append to internal topic {topicData.Name}"; }
                else if (request.Acks == -1 && partition.Topic.LogConfig.MinInSyncReplicas > 1)
                {
                    error = ErrorCode.NotEnoughReplicas;
                    message = $"The size of the current ISR Set(1) is insufficient to satisfy the min.isr requirement of {partition.Topic.LogConfig.MinInSyncReplicas} for partition {partition.TopicPartition}";
                }
                else if (pd.Records is not { Length: > 0 } records) { error = ErrorCode.CorruptMessage; message = "Produce request has no records"; }
                else
                {
                    var (appendError, appendMessage, info, _) = broker.Replicas.Append(partition, records.Span, v);
                    error = appendError;
                    message = appendMessage;
                    if (error == ErrorCode.None)
                    {
                        pr.BaseOffset = info.FirstOffset;
                        pr.LogAppendTimeMs = info.LogAppendTime;
                        pr.LogStartOffset = info.LogStartOffset;
                    }
                }
                pr.ErrorCode = (short)error;
                if (error != ErrorCode.None)
                {
                    anyError = true;
                    pr.ErrorMessage = message;
                }
            }
        }
        if (request.Acks == 0)
        {
            if (anyError) context.Connection?.Close();
            return ValueTask.FromResult<IKafkaMessage?>(null);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
