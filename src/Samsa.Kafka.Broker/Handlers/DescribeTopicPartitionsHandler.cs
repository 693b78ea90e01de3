// DescribeTopicPartitions (key 75), version 0 (KIP-966; the Java admin client's describeTopics
// from 3.7 on).
//
// Behaviour (upstream DescribeTopicPartitionsRequestHandler and the metadata cache's
// describeTopicResponse): an empty topic list means every topic. Topics are taken in name order
// (ordinal), starting at the cursor's topic (names before it are skipped) and, for that topic, at
// the cursor's partition; partitions are answered in index order until ResponsePartitionLimit
// (clamped to 1..max.request.partition.size.limit, 2000) is reached across topics. When a topic is
// cut short NextTopicPartition names it and the first partition left out; when the limit is used
// up exactly at a topic boundary it names the next topic with partition 0 (that topic may not
// exist). A named topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION
// for an illegal name) with its id zero; with all topics asked for, nothing is reported missing.
// A cursor whose topic is not in a non-empty topic list, or a negative cursor partition, is
// INVALID_REQUEST for every topic of the request (DescribeTopicPartitionsRequest.getErrorResponse).
// Per partition: the leader as the request's listener can reach it — a leader that is down or
// has no endpoint on that listener is -1, and, as upstream, the partition error stays NONE; the
// replica and ISR lists unfiltered; offline replicas are replicas not live or without the
// listener. Topic ids and the topic's authorized-operations bit set are always filled in.
// Authorization: DESCRIBE on each topic; with all topics asked for, unauthorized topics are left
// out; named ones come back TOPIC_AUTHORIZATION_FAILED with a zero id and no partitions (so
// whether they exist is not disclosed), after the authorized ones.
// Differences from upstream: Samsa runs ZooKeeper mode, which keeps no eligible leader replicas
// (KIP-966 ELR needs the KRaft controller): EligibleLeaderReplicas and LastKnownELR are empty
// lists, what a KRaft broker with eligible.leader.replicas.version=0 answers. Partitions whose
// state znode is missing in ZooKeeper mode are left out rather than warned about.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Security.Acl;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeTopicPartitionsHandler
{
    /// <summary>Upstream max.request.partition.size.limit (default 2000): the most partitions one
    /// answer holds, whatever the request asks.</summary>
    public const int MaxRequestPartitionSizeLimit = 2000;

    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeTopicPartitionsRequest request) =>
        ValueTask.FromResult<IKafkaMessage?>(Handle(context, request));

    private static DescribeTopicPartitionsResponse Handle(RequestContext context, DescribeTopicPartitionsRequest request)
    {
        var broker = context.Broker;
        bool allTopics = request.Topics.Count == 0;
        var cursor = request.Cursor;
        string cursorTopic = cursor?.TopicName ?? "";
        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (allTopics)
        {
            foreach (var t in broker.Replicas.Topics)
                if (string.CompareOrdinal(t.Name, cursorTopic) >= 0) names.Add(t.Name);
        }
        else
        {
            foreach (var t in request.Topics)
                if (string.CompareOrdinal(t.Name, cursorTopic) >= 0) names.Add(t.Name);
            if (cursor is not null && !names.Contains(cursor.TopicName))
                return ErrorResponse(request, ErrorCode.InvalidRequest);
        }
        if (cursor is not null && cursor.PartitionIndex < 0)
            return ErrorResponse(request, ErrorCode.InvalidRequest);

        var unauthorized = new List<DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic>();
        var authorized = new List<string>();
        foreach (var name in names)
        {
            if (Authz.Topic(context, AclOperation.Describe, name, logIfDenied: !allTopics)) { authorized.Add(name); continue; }
            if (!allTopics)
                unauthorized.Add(new()
                {
                    ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                    Name = name,
                    TopicId = Guid.Empty,
                    IsInternal = false,
                });
        }

        var response = new DescribeTopicPartitionsResponse();
        // The brokers this listener can reach: a leader outside it is answered as -1.
        var reachable = MetadataHandler.BrokerEntries(broker, context.Session.ListenerName).Select(b => b.NodeId).ToHashSet();
        int remaining = Math.Max(Math.Min(MaxRequestPartitionSizeLimit, request.ResponsePartitionLimit), 1);
        foreach (var name in authorized)
        {
            if (remaining == 0)
            {
                // The limit ran out exactly at a topic boundary: resume at this topic's start.
                response.NextTopicPartition = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = 0 };
                break;
            }
            var topic = broker.Replicas.GetTopic(name);
            if (topic is null)
            {
                if (!allTopics)
                    response.Topics.Add(new()
                    {
                        ErrorCode = (short)(TopicName.Validate(name) is null ? ErrorCode.UnknownTopicOrPartition : ErrorCode.InvalidTopicException),
                        Name = name,
                        TopicId = Guid.Empty,
                        IsInternal = TopicName.IsInternal(name),
                    });
                continue;
            }
            int start = name == cursorTopic && cursor is not null ? cursor.PartitionIndex : 0;
            var partitions = topic.Partitions.ToArray();
            var byIndex = partitions.ToDictionary(p => p.Index);
            int count = partitions.Length;
            int upper = Math.Min(count, start + remaining);
            var entry = new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
            {
                ErrorCode = (short)ErrorCode.None,
                Name = name,
                TopicId = topic.Id,
                IsInternal = topic.IsInternal,
                TopicAuthorizedOperations = Authz.Operations(context, ResourceType.Topic, name),
            };
            for (int i = start; i < upper; i++)
                if (byIndex.TryGetValue(i, out var p)) entry.Partitions.Add(PartitionEntry(broker, p, reachable));
            response.Topics.Add(entry);
            if (upper < count)
            {
                response.NextTopicPartition = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = upper };
                break;
            }
            remaining -= entry.Partitions.Count;
        }
        response.Topics.AddRange(unauthorized);
        return response;
    }

    private static DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition PartitionEntry(
        KafkaBroker broker, Partition p, HashSet<int> reachable)
    {
        if (p.LeaderId is not { } leader)
        {
            // Single-broker mode: this broker leads every partition and is its only replica.
            return new()
            {
                PartitionIndex = p.Index,
                LeaderId = broker.BrokerId,
                LeaderEpoch = p.LeaderEpoch,
                ReplicaNodes = [broker.BrokerId],
                IsrNodes = [broker.BrokerId],
                EligibleLeaderReplicas = [],
                LastKnownELR = [],
                OfflineReplicas = [],
            };
        }
        var replicas = p.ReplicaNodes?.ToList() ?? [];
        return new()
        {
            // Upstream leaves the error NONE here even without a reachable leader.
            ErrorCode = (short)ErrorCode.None,
            PartitionIndex = p.Index,
            LeaderId = leader >= 0 && reachable.Contains(leader) ? leader : -1,
            LeaderEpoch = p.LeaderEpoch,
            ReplicaNodes = replicas,
            IsrNodes = p.IsrNodes?.ToList() ?? [],
            EligibleLeaderReplicas = [],
            LastKnownELR = [],
            // Upstream isReplicaOffline: not registered, or without an endpoint on this listener.
            OfflineReplicas = replicas.Where(r => !reachable.Contains(r)).ToList(),
        };
    }

    /// <summary>Upstream DescribeTopicPartitionsRequest.getErrorResponse: every requested topic with
    /// the error and no partitions.</summary>
    private static DescribeTopicPartitionsResponse ErrorResponse(DescribeTopicPartitionsRequest request, ErrorCode error)
    {
        var response = new DescribeTopicPartitionsResponse();
        foreach (var t in request.Topics)
            response.Topics.Add(new() { ErrorCode = (short)error, Name = t.Name, TopicId = Guid.Empty, IsInternal = false });
        return response;
    }
}
