// DescribeLogDirs (key 35), versions 0-4.
//
// Behaviour (ReplicaManager.describeLogDirs): one result per log directory with the partitions
// it holds (all topics when the topic list is null; requested partitions that do not exist are
// left out), each with its size in bytes, offset lag 0 (leader) and is_future_key false; v4 adds
// the directory's total and usable bytes. A replica being moved here by AlterReplicaLogDirs is
// listed in its destination with is_future_key true, the bytes copied so far as its size and,
// as upstream (current log end offset - future log end offset), how far the copy lags behind.
// Authorization (KafkaApis.handleDescribeLogDirsRequest): CLUSTER DESCRIBE, else no results and
// (v3+) CLUSTER_AUTHORIZATION_FAILED.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class DescribeLogDirsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, DescribeLogDirsRequest request)
    {
        var broker = context.Broker;
        var wanted = request.Topics?.ToDictionary(t => t.Topic, t => t.Partitions.ToHashSet());
        var response = new DescribeLogDirsResponse();
        if (!Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Describe))
        {
            response.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            return ValueTask.FromResult<IKafkaMessage?>(response);
        }
        foreach (var dir in broker.Replicas.LogDirs)
        {
            var result = new DescribeLogDirsResponse.DescribeLogDirsResult { LogDir = Path.GetFullPath(dir) };
            try
            {
                var drive = new DriveInfo(Path.GetFullPath(dir));
                result.TotalBytes = drive.TotalSize;
                result.UsableBytes = drive.AvailableFreeSpace;
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
                result.TotalBytes = -1;
                result.UsableBytes = -1;
            }
            foreach (var topic in broker.Replicas.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                HashSet<int>? parts = null;
                if (wanted is not null && !wanted.TryGetValue(topic.Name, out parts)) continue;
                var tr = new DescribeLogDirsResponse.DescribeLogDirsTopic { Name = topic.Name };
                string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
                foreach (var p in topic.Partitions.ToArray())
                {
                    if (parts is not null && !parts.Contains(p.Index)) continue;
                    if (p.Log.Directory == dir || p.Log.Directory == full)
                        tr.Partitions.Add(new DescribeLogDirsResponse.DescribeLogDirsPartition { PartitionIndex = p.Index, PartitionSize = p.Log.SizeInBytes, OffsetLag = 0 });
                    if (broker.LogManager is { } manager)
                        foreach (var move in manager.Moves)
                        {
                            if (move.Partition.Topic != topic.Name || move.Partition.Partition != p.Index || move.DestinationDir != full) continue;
                            var (bytes, copiedUpTo) = manager.MoveProgress(move);
                            tr.Partitions.Add(new DescribeLogDirsResponse.DescribeLogDirsPartition
                            {
                                PartitionIndex = p.Index, PartitionSize = bytes, IsFutureKey = true,
                                OffsetLag = Math.Max(0, p.Log.LogEndOffset - copiedUpTo),
                            });
                        }
                }
                if (tr.Partitions.Count > 0) result.Topics.Add(tr);
            }
            response.Results.Add(result);
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }
}
