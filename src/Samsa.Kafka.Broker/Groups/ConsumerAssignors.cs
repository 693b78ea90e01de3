namespace Samsa.Kafka.Broker.Groups;

/// <summary>What a server-side assignor sees of one member: its id, rack and subscribed topic ids.</summary>
public sealed record AssignorMember(string MemberId, string? InstanceId, string? RackId, IReadOnlySet<Guid> Topics);

/// <summary>A server-side assignor of KIP-848 (upstream's ConsumerGroupPartitionAssignor): from the
/// members' subscriptions, the topics' partition counts and the previous target assignment it
/// computes the new target assignment of every member.</summary>
public interface IConsumerAssignor
{
    string Name { get; }
    Dictionary<string, PartitionSet> Assign(IReadOnlyList<AssignorMember> members, IReadOnlyDictionary<Guid, int> partitionsPerTopic,
        IReadOnlyDictionary<string, PartitionSet> previous);
}

public static class ConsumerAssignors
{
    /// <summary>group.consumer.assignors accepts the short names and upstream's class names.</summary>
    public static IConsumerAssignor? ByName(string name) => name.Trim() switch
    {
        "uniform" or "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => new UniformAssignor(),
        "range" or "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => new RangeAssignor(),
        _ => null,
    };
}

/// <summary>
/// The "uniform" assignor (upstream's UniformAssignor, the default): every partition of a subscribed
/// topic goes to one subscriber, the members' partition counts differ by at most one where their
/// subscriptions allow it, and a member keeps as many of its previous partitions as balance
/// permits (stickiness), so a rebalance moves only what must move. Upstream runs a dedicated
/// algorithm for homogeneous and heterogeneous subscriptions; this one is a single greedy pass plus
/// a balancing pass and produces the same kind of result (balanced, sticky), not always the same
/// partition-to-member mapping. Racks are not considered.
/// </summary>
public sealed class UniformAssignor : IConsumerAssignor
{
    public string Name => "uniform";

    public Dictionary<string, PartitionSet> Assign(IReadOnlyList<AssignorMember> members, IReadOnlyDictionary<Guid, int> partitionsPerTopic,
        IReadOnlyDictionary<string, PartitionSet> previous)
    {
        var ordered = members.OrderBy(m => m.MemberId, StringComparer.Ordinal).ToList();
        var result = ordered.ToDictionary(m => m.MemberId, _ => new PartitionSet(), StringComparer.Ordinal);
        var load = ordered.ToDictionary(m => m.MemberId, _ => 0, StringComparer.Ordinal);
        var owner = new Dictionary<(Guid, int), string>();
        var subscribers = new Dictionary<Guid, List<AssignorMember>>();
        foreach (var (topic, _) in partitionsPerTopic)
            subscribers[topic] = ordered.Where(m => m.Topics.Contains(topic)).ToList();

        // 1. Stickiness: a member keeps its previous partitions that still exist and that it still subscribes to.
        foreach (var m in ordered)
        {
            if (!previous.TryGetValue(m.MemberId, out var prev)) continue;
            foreach (var (t, p) in prev.All())
            {
                if (!partitionsPerTopic.TryGetValue(t, out int count) || p >= count || !m.Topics.Contains(t)) continue;
                if (owner.ContainsKey((t, p))) continue;
                owner[(t, p)] = m.MemberId;
                result[m.MemberId].Add(t, p);
                load[m.MemberId]++;
            }
        }
        // 2. Every unowned partition goes to its least-loaded subscriber (ties: member id order).
        foreach (var (topic, count) in partitionsPerTopic.OrderBy(kv => kv.Key))
        {
            var subs = subscribers[topic];
            if (subs.Count == 0) continue;
            for (int p = 0; p < count; p++)
            {
                if (owner.ContainsKey((topic, p))) continue;
                var to = subs.MinBy(s => load[s.MemberId])!;
                owner[(topic, p)] = to.MemberId;
                result[to.MemberId].Add(topic, p);
                load[to.MemberId]++;
            }
        }
        // 3. Balance: move a partition from a member to a subscriber holding at least two fewer,
        // until no such move exists (each move lowers the sum of squared loads, so this ends).
        bool moved = true;
        while (moved)
        {
            moved = false;
            foreach (var m in ordered.OrderByDescending(m => load[m.MemberId]).ToList())
            {
                foreach (var (t, p) in result[m.MemberId].All().Reverse().ToList())
                {
                    var to = subscribers[t].Where(s => load[s.MemberId] <= load[m.MemberId] - 2).MinBy(s => load[s.MemberId]);
                    if (to is null) continue;
                    result[m.MemberId].Remove(t, p);
                    result[to.MemberId].Add(t, p);
                    load[m.MemberId]--;
                    load[to.MemberId]++;
                    moved = true;
                }
            }
        }
        return result;
    }
}

/// <summary>
/// The "range" assignor (upstream's RangeAssignor, server side): per topic, the subscribers in
/// member-id order get consecutive ranges of partitions, the first (partitions % subscribers)
/// one partition more, so members subscribing to co-partitioned topics get the same partition
/// numbers of each. Not sticky (upstream's server-side range assignor keeps previous ranges when
/// the member count is unchanged; here the ranges are recomputed, which gives the same result then).
/// </summary>
public sealed class RangeAssignor : IConsumerAssignor
{
    public string Name => "range";

    public Dictionary<string, PartitionSet> Assign(IReadOnlyList<AssignorMember> members, IReadOnlyDictionary<Guid, int> partitionsPerTopic,
        IReadOnlyDictionary<string, PartitionSet> previous)
    {
        var result = members.ToDictionary(m => m.MemberId, _ => new PartitionSet(), StringComparer.Ordinal);
        foreach (var (topic, count) in partitionsPerTopic)
        {
            var subs = members.Where(m => m.Topics.Contains(topic)).OrderBy(m => m.MemberId, StringComparer.Ordinal).ToList();
            if (subs.Count == 0) continue;
            int each = count / subs.Count, extra = count % subs.Count, next = 0;
            for (int i = 0; i < subs.Count; i++)
            {
                int n = each + (i < extra ? 1 : 0);
                for (int k = 0; k < n; k++) result[subs[i].MemberId].Add(topic, next++);
            }
        }
        return result;
    }
}
