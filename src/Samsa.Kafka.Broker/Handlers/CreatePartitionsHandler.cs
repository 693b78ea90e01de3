// CreatePartitions (key 37), versions 0-3.
//
// Behaviour (ZkAdminManager.createPartitions): a topic listed twice is INVALID_REQUEST; the new
// count must exceed the current one (INVALID_PARTITIONS); an explicit assignment must cover
// exactly the added partitions on live brokers, with the topic's replication factor and no broker
// twice (INVALID_REPLICA_ASSIGNMENT), and is written as given; unknown topics
// UNKNOWN_TOPIC_OR_PARTITION; validate_only checks without creating.
// Authorization (KafkaApis.handleCreatePartitionsRequest): TOPIC ALTER per topic
// (TOPIC_AUTHORIZATION_FAILED "The topic authorization is failed.").
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class CreatePartitionsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, CreatePartitionsRequest request)
    {
        var broker = context.Broker;
        var response = new CreatePartitionsResponse();
        var duplicates = request.Topics.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            ErrorCode error;
            string? message = null;
            var topic = broker.Replicas.GetTopic(t.Name);
            if (duplicates.Contains(t.Name)) { error = ErrorCode.InvalidRequest; message = "Duplicate topic in request."; }
            else if (!Security.Acl.Authz.Topic(context, Security.Acl.AclOperation.Alter, t.Name)) { error = ErrorCode.TopicAuthorizationFailed; message = "The topic authorization is failed."; }
            else if (topic is null) { error = ErrorCode.UnknownTopicOrPartition; message = $"The topic '{t.Name}' does not exist."; }
            else if (t.Assignments is { Count: > 0 } assignments && assignments.Count != t.Count - topic.Partitions.Count)
            {
                error = ErrorCode.InvalidReplicaAssignment;
                message = $"Increasing the number of partitions by {t.Count - topic.Partitions.Count} but {assignments.Count} assignments provided.";
            }
            else if (t.Assignments is { Count: > 0 } a2 && a2.SelectMany(x => x.BrokerIds).Where(b => !IsLive(broker, b)).Distinct().ToList() is { Count: > 0 } unknown)
            {
                error = ErrorCode.InvalidReplicaAssignment;
                message = $"Unknown broker(s) in replica assignment: {string.Join(", ", unknown)}.";
            }
            else (error, message) = broker.Replicas.CreatePartitions(t.Name, t.Count, request.ValidateOnly,
                t.Assignments is { Count: > 0 } a3 ? a3.Select(x => x.BrokerIds.ToList()).ToList() : null);
            result.ErrorCode = (short)error;
            result.ErrorMessage = error == ErrorCode.None ? null : message;
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    // ZooKeeper mode: the registered brokers; a single broker knows only itself.
    private static bool IsLive(KafkaBroker broker, int id) => broker.Cluster?.IsLive(id) ?? id == broker.BrokerId;
}
