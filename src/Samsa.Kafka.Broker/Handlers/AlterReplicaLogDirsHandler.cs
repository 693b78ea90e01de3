// AlterReplicaLogDirs (key 34), versions 0-2: moves this broker's replicas between its log
// directories (kafka-reassign-partitions.sh with log_dirs, Admin.alterReplicaLogDirs).
//
// Behaviour (ZooKeeper-mode KafkaApis.handleAlterReplicaLogDirsRequest → ReplicaManager
// .alterReplicaLogDirs): without CLUSTER ALTER every partition gets CLUSTER_AUTHORIZATION_FAILED.
// Per partition: a destination that is not one of log.dirs → LOG_DIR_NOT_FOUND; one that is gone
// or unusable → KAFKA_STORAGE_ERROR; a topic unknown to the broker → UNKNOWN_TOPIC_OR_PARTITION;
// a partition with no replica on this broker → REPLICA_NOT_AVAILABLE (upstream keeps that code
// for this API instead of NOT_LEADER_OR_FOLLOWER); otherwise NONE and the move starts in the
// background (Samsa.Kafka.Storage LogManager.StartMove: a "-future" copy in the destination,
// throttled by replica.alter.log.dirs.io.max.bytes.per.second, swapped in when complete). Naming
// the directory the replica is already in stops a move in progress, as upstream does.
// DescribeLogDirs shows the future replica (IsFutureKey) in the destination until the swap.
// Differences: a broker with in-memory logs (tests only) answers KAFKA_STORAGE_ERROR; upstream
// remembers a destination for a replica it does not host yet (maybeUpdatePreferredLogDir) and
// creates it there later — here such a partition just gets REPLICA_NOT_AVAILABLE.
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class AlterReplicaLogDirsHandler
{
    public static ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, AlterReplicaLogDirsRequest request)
    {
        var broker = context.Broker;
        bool authorized = Security.Acl.Authz.Cluster(context, Security.Acl.AclOperation.Alter);
        var manager = broker.LogManager;
        var results = new Dictionary<string, AlterReplicaLogDirsResponse.AlterReplicaLogDirTopicResult>(StringComparer.Ordinal);
        var response = new AlterReplicaLogDirsResponse();
        foreach (var dir in request.Dirs)
        {
            string? dest = null;
            try { dest = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir.Path)); }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { }
            foreach (var topic in dir.Topics)
            {
                if (!results.TryGetValue(topic.Name, out var tr))
                {
                    tr = new AlterReplicaLogDirsResponse.AlterReplicaLogDirTopicResult { TopicName = topic.Name };
                    results[topic.Name] = tr;
                    response.Results.Add(tr);
                }
                foreach (int p in topic.Partitions)
                    tr.Partitions.Add(new AlterReplicaLogDirsResponse.AlterReplicaLogDirPartitionResult
                    {
                        PartitionIndex = p,
                        ErrorCode = (short)(authorized ? Move(broker, manager, dest, topic.Name, p) : ErrorCode.ClusterAuthorizationFailed),
                    });
            }
        }
        return ValueTask.FromResult<IKafkaMessage?>(response);
    }

    private static ErrorCode Move(KafkaBroker broker, Samsa.Kafka.Storage.LogManager? manager, string? dest, string topic, int partition)
    {
        var dirs = manager?.LogDirs ?? broker.Replicas.LogDirs.Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))).ToList();
        if (dest is null || !dirs.Contains(dest)) return ErrorCode.LogDirNotFound;
        if (manager is null || !Directory.Exists(dest)) return ErrorCode.KafkaStorageError;
        if (broker.Replicas.GetTopic(topic) is not { } t) return ErrorCode.UnknownTopicOrPartition;
        if (t.Partitions.ToArray().FirstOrDefault(x => x.Index == partition) is not { } local) return ErrorCode.UnknownTopicOrPartition;
        if (!local.IsHostedLocally) return ErrorCode.ReplicaNotAvailable;
        var tp = new Samsa.Kafka.Storage.TopicPartition(topic, partition);
        if (manager.GetLog(tp) is null) return ErrorCode.ReplicaNotAvailable;
        try
        {
            manager.StartMove(tp, dest);
            return ErrorCode.None;
        }
        catch (KeyNotFoundException) { return ErrorCode.ReplicaNotAvailable; }
        catch (DirectoryNotFoundException) { return ErrorCode.LogDirNotFound; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            broker.Log($"AlterReplicaLogDirs {topic}-{partition} to {dest}: {e.Message}");
            return ErrorCode.KafkaStorageError;
        }
        catch (ObjectDisposedException) { return ErrorCode.KafkaStorageError; }
    }
}
