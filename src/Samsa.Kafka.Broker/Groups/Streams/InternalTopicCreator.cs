using System.Collections.Concurrent;
using Samsa.Kafka.Protocol;

namespace Samsa.Kafka.Broker.Groups.Streams;

/// <summary>
/// Creates a streams group's missing internal topics (repartition and changelog topics) off the
/// request path, as upstream 4.2's KafkaApis does after a StreamsGroupHeartbeat
/// (AutoTopicCreationManager.createStreamsInternalTopics): the partition count the coordinator
/// derived, the topology's replication factor (0 = default.replication.factor) and configs. A
/// topic already being created is not asked for again; the next heartbeat after it exists sees it.
/// </summary>
public static class InternalTopicCreator
{
    private static readonly ConcurrentDictionary<(KafkaBroker, string), byte> InFlight = new();

    public static void Request(KafkaBroker broker, IReadOnlyList<InternalTopicSpec> topics)
    {
        foreach (var t in topics)
        {
            if (!InFlight.TryAdd((broker, t.Name), 0)) continue;
            _ = Task.Run(() =>
            {
                try
                {
                    short rf = t.ReplicationFactor > 0 ? t.ReplicationFactor : broker.Config.DefaultReplicationFactor;
                    var (error, message, _) = broker.Replicas.CreateTopic(t.Name, t.Partitions, rf, t.Configs, validateOnly: false);
                    if (error is not ErrorCode.None and not ErrorCode.TopicAlreadyExists)
                        broker.Log($"[GroupCoordinator] could not create streams internal topic {t.Name}: {error} {message}");
                }
                catch (Exception e)
                {
                    broker.Log($"[GroupCoordinator] could not create streams internal topic {t.Name}: {e.Message}");
                }
                finally
                {
                    InFlight.TryRemove((broker, t.Name), out _);
                }
            });
        }
    }
}
