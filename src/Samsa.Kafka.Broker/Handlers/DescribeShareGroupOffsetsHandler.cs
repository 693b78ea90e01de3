// DescribeShareGroupOffsets (key 90), versions 0-1 (v1: Kafka 4.2, KIP-1226 lag).
//
// Behaviour (KIP-932 admin, upstream GroupCoordinatorService.describeShareGroupOffsets): per
// group, the share-partition start offset (SPSO) of each requested partition, its leader epoch
// and (v1) its lag: the records from the SPSO to the high watermark not yet acknowledged or
// archived. A share-partition that was never started answers StartOffset -1 and Lag -1. Topics
// null means the partitions of every topic the group's members subscribe or subscribed to
// (since this coordinator started) plus every share-partition of the group this broker knows.
// The group's coordinator (FindCoordinator key type 0) answers. The share-partition state lives
// on each partition's leader here (loaded, else read from the share coordinator), so the coordinator asks the
// leaders of partitions it does not lead with the same request (inter-broker listener); a broker
// that is not the coordinator answers only when it leads every partition asked for (which is
// what such a forwarded request asks), else NOT_COORDINATOR.
// Errors: group GROUP_AUTHORIZATION_FAILED, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
// GROUP_ID_NOT_FOUND (the coordinator knows no such share group and no state for it); partition
// TOPIC_AUTHORIZATION_FAILED (TOPIC DESCRIBE), UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_SERVER_ERROR
// when a leader cannot be asked.
// The start offset and lag come from the share-partition leader: its loaded share-partition, else
// the share coordinator's state (ReadShareGroupState, __share_group_state).
// Differs from upstream: upstream's group coordinator asks the share coordinator directly
// (ReadShareGroupStateSummary); here the group coordinator asks the partition leaders, which ask it.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeShareGroupOffsetsHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeShareGroupOffsetsRequest request)
    {
        var broker = context.Broker;
        var shares = broker.Shares;
        var response = new DescribeShareGroupOffsetsResponse();
        foreach (var rq in request.Groups)
        {
            string groupId = rq.GroupId;
            var rg = new DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponseGroup { GroupId = groupId };
            response.Groups.Add(rg);
            if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, groupId))
            {
                rg.ErrorCode = (short)ErrorCode.GroupAuthorizationFailed;
                rg.ErrorMessage = "Group authorization failed.";
                continue;
            }
            var status = shares.CoordinatorStatus(groupId);
            bool coordinator = status == ErrorCode.None;
            if (!coordinator && rq.Topics is null)
            {
                // Only the coordinator knows which share-partitions a group has.
                rg.ErrorCode = (short)status;
                continue;
            }
            // The partitions asked for, by topic name.
            var wanted = new List<(string Topic, List<int> Partitions)>();
            if (rq.Topics is { } topics)
                wanted.AddRange(topics.Select(t => (t.TopicName, t.Partitions.Distinct().ToList())));
            else
            {
                var names = new SortedSet<string>(shares.Coordinator.SubscribedTopics(groupId), StringComparer.Ordinal);
                foreach (var (topicId, _) in shares.PartitionsOf(groupId))
                    if (broker.Replicas.GetTopic(topicId) is { } t) names.Add(t.Name);
                foreach (var name in names)
                    if (broker.Replicas.GetTopic(name) is { } t) wanted.Add((name, Enumerable.Range(0, t.Partitions.Count).ToList()));
            }
            bool allLocal = wanted.All(w => w.Partitions.All(p => broker.Replicas.GetPartition(w.Topic, p) is not { IsLeader: false }));
            if (!coordinator && !allLocal)
            {
                rg.ErrorCode = (short)status;
                continue;
            }
            if (coordinator && rq.Topics is null && wanted.Count == 0 && !shares.IsShareGroup(groupId))
            {
                rg.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                rg.ErrorMessage = $"Group {groupId} not found.";
                continue;
            }
            var denied = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Describe, wanted.Select(w => (string?)w.Topic));
            var remote = new Dictionary<int, List<(string Topic, int Partition, DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponsePartition Entry)>>();
            foreach (var (topicName, partitions) in wanted)
            {
                var topic = broker.Replicas.GetTopic(topicName);
                var rt = new DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponseTopic { TopicName = topicName, TopicId = topic?.Id ?? Guid.Empty };
                rg.Topics.Add(rt);
                foreach (int index in partitions)
                {
                    var rp = new DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponsePartition
                    {
                        PartitionIndex = index, StartOffset = -1, LeaderEpoch = -1, Lag = -1,
                    };
                    rt.Partitions.Add(rp);
                    if (denied.Contains(topicName)) { rp.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed; continue; }
                    var partition = topic is null ? null : broker.Replicas.GetPartition(topicName, index);
                    if (partition is null) { rp.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                    if (partition.IsLeader)
                    {
                        rp.LeaderEpoch = partition.LeaderEpoch;
                        try
                        {
                            if (await shares.DescribeLocalAsync(groupId, partition, context.Cancellation) is { } d)
                            {
                                rp.StartOffset = d.StartOffset;
                                rp.Lag = d.Lag;
                            }
                        }
                        catch (Groups.Share.SharePersisterException e)
                        {
                            rp.ErrorCode = (short)e.Error;
                            rp.ErrorMessage = $"The share coordinator answered {e.Error}.";
                        }
                        continue;
                    }
                    int leader = partition.LeaderId ?? -1;
                    if (!remote.TryGetValue(leader, out var list)) remote[leader] = list = [];
                    list.Add((topicName, index, rp));
                }
            }
            foreach (var (leader, list) in remote)
                await AskLeader(broker, groupId, leader, list, context.Cancellation);
        }
        // v0 has no Lag: the field is ignorable, so a v0 answer leaves it out.
        return response;
    }

    private static async Task AskLeader(KafkaBroker broker, string groupId, int leader,
        List<(string Topic, int Partition, DescribeShareGroupOffsetsResponse.DescribeShareGroupOffsetsResponsePartition Entry)> list,
        CancellationToken ct)
    {
        try
        {
            if (leader < 0 || broker.InterBroker.EndpointOf(leader) is not { } ep) throw new InvalidOperationException($"no live leader {leader}");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await using var client = await broker.InterBroker.ConnectAsync(ep.Host, ep.Port, $"broker-{broker.BrokerId}-share-describe", timeout.Token);
            var forwarded = new DescribeShareGroupOffsetsRequest
            {
                Groups = [new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup
                {
                    GroupId = groupId,
                    Topics = list.GroupBy(x => x.Topic).Select(g => new DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestTopic
                    {
                        TopicName = g.Key, Partitions = g.Select(x => x.Partition).ToList(),
                    }).ToList(),
                }],
            };
            var answer = await client.SendAsync<DescribeShareGroupOffsetsResponse>(forwarded, 1, ct: timeout.Token)
                ?? throw new InvalidOperationException("no answer");
            var group = answer.Groups.Single();
            foreach (var (topic, index, entry) in list)
            {
                if (group.ErrorCode != 0) { entry.ErrorCode = group.ErrorCode; continue; }
                var p = group.Topics.FirstOrDefault(t => t.TopicName == topic)?.Partitions.FirstOrDefault(p => p.PartitionIndex == index);
                if (p is null) { entry.ErrorCode = (short)ErrorCode.UnknownServerError; continue; }
                entry.StartOffset = p.StartOffset;
                entry.LeaderEpoch = p.LeaderEpoch;
                entry.Lag = p.Lag;
                entry.ErrorCode = p.ErrorCode;
                entry.ErrorMessage = p.ErrorMessage;
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException or Samsa.Kafka.Protocol.Primitives.KafkaProtocolException or System.Net.Sockets.SocketException)
        {
            foreach (var (_, _, entry) in list)
            {
                entry.ErrorCode = (short)ErrorCode.UnknownServerError;
                entry.ErrorMessage = $"The leader could not be asked: {e.Message}";
            }
        }
    }
}
