// DeleteTopics (key 20), versions 0-6.
//
// Behaviour (KafkaApis.handleDeleteTopicsRequest): delete.topic.enable=false answers
// TOPIC_DELETION_DISABLED; v6 entries name a topic or a topic id (both or neither:
// INVALID_REQUEST); unknown names UNKNOWN_TOPIC_OR_PARTITION, unknown ids UNKNOWN_TOPIC_ID. The
// logs are removed before the answer (upstream deletes asynchronously after the answer).
// Authorization (KafkaApis.handleDeleteTopicsRequest): TOPIC DELETE (TOPIC_AUTHORIZATION_FAILED,
// before existence is checked); by id (v6+) without TOPIC DESCRIBE the answer names no topic.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DeleteTopicsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DeleteTopicsRequest request)
    {
        var broker = context.Broker;
        short v = context.ApiVersion;
        var response = new DeleteTopicsResponse();
        var entries = v >= 6
            ? request.Topics.Select(t => (t.Name, t.TopicId)).ToList()
            : request.TopicNames.Select(n => ((string?)n, Guid.Empty)).ToList();
        foreach (var (name, id) in entries)
        {
            var result = new DeleteTopicsResponse.DeletableTopicResult { Name = name, TopicId = id };
            response.Responses.Add(result);
            if (!broker.Config.DeleteTopicEnable)
            {
                result.ErrorCode = (short)ErrorCode.TopicDeletionDisabled;
                continue;
            }
            if (v >= 6 && (name is null) == (id == Guid.Empty))
            {
                result.ErrorCode = (short)ErrorCode.InvalidRequest;
                result.ErrorMessage = "Topic name and topic id must be set exclusively";
                continue;
            }
            TopicState? topic = name is not null ? broker.Replicas.GetTopic(name) : broker.Replicas.GetTopic(id);
            if (name is null && topic is not null && !Security.Acl.Authz.Topic(context, Security.Acl.AclOperation.Describe, topic.Name))
            {
                // By id without DESCRIBE: the name stays hidden, the id is not secret (upstream).
                result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                continue;
            }
            if ((name ?? topic?.Name) is { } resolved && !Security.Acl.Authz.Topic(context, Security.Acl.AclOperation.Delete, resolved))
            {
                result.Name = resolved == name ? name : result.Name;
                result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                continue;
            }
            if (topic is null)
            {
                result.ErrorCode = (short)(name is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                continue;
            }
            result.Name = topic.Name;
            result.TopicId = topic.Id;
            var (error, message) = broker.Replicas.DeleteTopic(topic.Name);
            result.ErrorCode = (short)error;
            if (error != ErrorCode.None) result.ErrorMessage = message;
            foreach (var p in topic.Partitions) broker.FetchPurgatory.CheckAndComplete(p.TopicPartition);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
