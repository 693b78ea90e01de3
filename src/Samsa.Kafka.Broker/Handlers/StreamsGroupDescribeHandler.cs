// StreamsGroupDescribe (key 89), version 0 (Kafka 4.2's range).
//
// Behaviour (GroupMetadataManager.streamsGroupDescribe): per group its state (Empty, NotReady,
// Assigning, Reconciling, Stable), group and assignment epochs, the topology (its epoch, and the
// configured sub-topologies with partition counts once the topics are ready, else null), and every
// member: epochs, process, endpoint, client tags, reported task offsets, current and target
// assignment. GROUP_ID_NOT_FOUND for an unknown id or a group of another type; INVALID_GROUP_ID for "".
// Authorization (KafkaApis.handleStreamsGroupDescribe): GROUP DESCRIBE per group
// (GROUP_AUTHORIZATION_FAILED); the authorized operations when asked for. Upstream also refuses
// (TOPIC_AUTHORIZATION_FAILED) when the caller may not DESCRIBE a topic of the topology; not done here.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class StreamsGroupDescribeHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, StreamsGroupDescribeRequest request)
    {
        var response = new StreamsGroupDescribeResponse();
        bool enabled = context.Broker.Features.Level("streams.version") >= 1;   // streams.version 0: upstream UNSUPPORTED_VERSION
        foreach (var id in request.GroupIds)
        {
            StreamsGroupDescribeResponse.DescribedGroup g;
            if (!enabled)
            {
                response.Groups.Add(new() { GroupId = id, ErrorCode = (short)ErrorCode.UnsupportedVersion });
                continue;
            }
            if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Describe, id))
                g = new() { GroupId = id, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed };
            else if (id.Length == 0)
                g = new() { GroupId = id, ErrorCode = (short)ErrorCode.InvalidGroupId };
            else
            {
                g = context.Broker.Groups.Coordinator.DescribeStreamsGroup(id);
                if (g.ErrorCode == 0 && request.IncludeAuthorizedOperations)
                    g.AuthorizedOperations = Security.Acl.Authz.Operations(context, Security.Acl.ResourceType.Group, id);
            }
            response.Groups.Add(g);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
