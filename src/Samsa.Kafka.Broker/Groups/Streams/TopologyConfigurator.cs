using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Groups.Streams;

/// <summary>
/// Checks a streams topology against the cluster's topics, as upstream's InternalTopicManager
/// .configureTopics does: source topics (names and patterns) must exist; repartition topics without
/// a fixed partition count take the largest task count of the sub-topologies writing them;
/// co-partition groups must agree (repartition topics follow the source topics); a sub-topology has
/// as many tasks as its largest input topic; a changelog has as many partitions as its
/// sub-topology has tasks. Missing internal topics are listed for creation; existing ones with the
/// wrong partition count are INCORRECTLY_PARTITIONED_TOPICS.
/// </summary>
public static class TopologyConfigurator
{
    public const sbyte StaleTopology = 0, MissingSourceTopics = 1, IncorrectlyPartitionedTopics = 2,
        MissingInternalTopics = 3, ShutdownApplication = 4;

    /// <param name="partitionsOf">Partition count of an existing topic, null when it does not exist.</param>
    /// <param name="topicNames">Every topic of the cluster (for source patterns).</param>
    /// <param name="matches">Whether a pattern matches a whole topic name (null pattern = invalid, matches nothing).</param>
    public static ConfiguredTopology Configure(StreamsGroupTopologyValue topology, Func<string, int?> partitionsOf,
        IReadOnlyCollection<string> topicNames, Func<string, string, bool> matches)
    {
        var statuses = new List<(sbyte, string)>();
        var sources = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        var resolved = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var s in topology.Subtopologies)
        {
            var list = new List<string>();
            foreach (var t in s.SourceTopics)
            {
                if (partitionsOf(t) is null) missing.Add(t); else list.Add(t);
            }
            foreach (var pattern in s.SourceTopicRegex)
            {
                var hits = topicNames.Where(n => matches(pattern, n)).Order(StringComparer.Ordinal).ToList();
                if (hits.Count == 0) missing.Add(pattern);
                list.AddRange(hits);
            }
            sources[s.SubtopologyId] = list.Distinct(StringComparer.Ordinal).ToList();
            resolved.UnionWith(list);
        }
        if (missing.Count > 0)
            return new ConfiguredTopology
            {
                TopologyEpoch = topology.Epoch, SourceTopicsResolved = resolved.ToList(),
                Statuses = [(MissingSourceTopics, $"Source topics {string.Join(", ", missing)} are missing.")],
            };

        // Repartition topic partition counts: fixed ones first, then derived from their writers.
        var repartition = new Dictionary<string, int>(StringComparer.Ordinal);
        var fixedCount = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in topology.Subtopologies)
            foreach (var r in s.RepartitionSourceTopics)
                if (r.Partitions > 0) { repartition[r.Name] = r.Partitions; fixedCount.Add(r.Name); }
        var tasks = new Dictionary<string, int>(StringComparer.Ordinal);
        int? TaskCount(StreamsGroupTopologyValue.Subtopology s)
        {
            int max = 0;
            foreach (var t in sources[s.SubtopologyId]) max = Math.Max(max, partitionsOf(t) ?? 0);
            foreach (var r in s.RepartitionSourceTopics)
            {
                if (!repartition.TryGetValue(r.Name, out var n)) return null;
                max = Math.Max(max, n);
            }
            return max;
        }
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var s in topology.Subtopologies)
                if (!tasks.ContainsKey(s.SubtopologyId) && TaskCount(s) is { } n) { tasks[s.SubtopologyId] = n; changed = true; }
            foreach (var s in topology.Subtopologies)
                foreach (var r in s.RepartitionSourceTopics)
                {
                    if (repartition.ContainsKey(r.Name)) continue;
                    var writers = topology.Subtopologies.Where(w => w.RepartitionSinkTopics.Contains(r.Name)).ToList();
                    if (writers.Count > 0 && writers.All(w => tasks.ContainsKey(w.SubtopologyId)))
                    {
                        repartition[r.Name] = Math.Max(1, writers.Max(w => tasks[w.SubtopologyId]));
                        changed = true;
                    }
                }
        }
        var underived = topology.Subtopologies.SelectMany(s => s.RepartitionSourceTopics).Select(r => r.Name)
            .Where(n => !repartition.ContainsKey(n)).Distinct(StringComparer.Ordinal).ToList();
        if (underived.Count > 0)
            statuses.Add((IncorrectlyPartitionedTopics, $"Cannot derive the partition count of repartition topics {string.Join(", ", underived)}."));

        // Co-partitioning (upstream's CopartitionedTopicsEnforcer).
        foreach (var s in topology.Subtopologies)
            foreach (var g in s.CopartitionGroups)
            {
                var external = new List<(string Name, int Partitions)>();
                foreach (var i in g.SourceTopics)
                    if (i >= 0 && i < s.SourceTopics.Count && partitionsOf(s.SourceTopics[i]) is { } n) external.Add((s.SourceTopics[i], n));
                foreach (var i in g.SourceTopicRegex)
                    if (i >= 0 && i < s.SourceTopicRegex.Count)
                        foreach (var t in topicNames.Where(n => matches(s.SourceTopicRegex[i], n)))
                            if (partitionsOf(t) is { } n) external.Add((t, n));
                var internalNames = g.RepartitionSourceTopics.Where(i => i >= 0 && i < s.RepartitionSourceTopics.Count)
                    .Select(i => s.RepartitionSourceTopics[i].Name).ToList();
                if (external.Select(e => e.Partitions).Distinct().Count() > 1)
                {
                    statuses.Add((IncorrectlyPartitionedTopics,
                        $"Following topics are not copartitioned: [{string.Join(", ", external.Select(e => e.Name).Order(StringComparer.Ordinal))}]"));
                    continue;
                }
                int target = external.Count > 0 ? external[0].Partitions
                    : internalNames.Where(repartition.ContainsKey).Select(n => repartition[n]).DefaultIfEmpty(0).Max();
                foreach (var n in internalNames)
                {
                    if (fixedCount.Contains(n) && repartition[n] != target)
                        statuses.Add((IncorrectlyPartitionedTopics, $"Repartition topic {n} must have {target} partitions to be copartitioned, it is fixed at {repartition[n]}."));
                    else if (target > 0) repartition[n] = target;
                }
            }
        if (statuses.Count > 0)
            return new ConfiguredTopology { TopologyEpoch = topology.Epoch, SourceTopicsResolved = resolved.ToList(), Statuses = statuses };

        tasks.Clear();
        foreach (var s in topology.Subtopologies) tasks[s.SubtopologyId] = TaskCount(s) ?? 0;

        // Internal topics: repartition and changelog topics, created when missing.
        var creatable = new List<InternalTopicSpec>();
        var wrong = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Check(string name, int partitions, short rf, IEnumerable<(string Key, string Value)> configs, string defaultPolicy)
        {
            if (!seen.Add(name)) return;
            if (partitionsOf(name) is { } actual)
            {
                if (actual != partitions) wrong.Add(name);
                return;
            }
            var cfg = new Dictionary<string, string>(StringComparer.Ordinal) { ["cleanup.policy"] = defaultPolicy };
            foreach (var (k, v) in configs) cfg[k] = v;
            creatable.Add(new InternalTopicSpec(name, Math.Max(1, partitions), rf, cfg));
        }
        var changelogs = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var inputs = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var s in topology.Subtopologies)
        {
            foreach (var r in s.RepartitionSourceTopics)
                Check(r.Name, repartition[r.Name], r.ReplicationFactor, r.TopicConfigs.Select(c => (c.Key, c.Value)), "delete");
            foreach (var c in s.StateChangelogTopics)
                Check(c.Name, tasks[s.SubtopologyId], c.ReplicationFactor, c.TopicConfigs.Select(x => (x.Key, x.Value)), "compact");
            changelogs[s.SubtopologyId] = s.StateChangelogTopics.Select(c => c.Name).ToList();
            inputs[s.SubtopologyId] = sources[s.SubtopologyId].Concat(s.RepartitionSourceTopics.Select(r => r.Name)).ToList();
        }
        if (wrong.Count > 0)
            statuses.Add((IncorrectlyPartitionedTopics, $"Internal topics {string.Join(", ", wrong.Order(StringComparer.Ordinal))} have the wrong number of partitions."));
        if (creatable.Count > 0)
            statuses.Add((MissingInternalTopics, $"Internal topics are missing: [{string.Join(", ", creatable.Select(c => c.Name).Order(StringComparer.Ordinal))}]"));
        return new ConfiguredTopology
        {
            TopologyEpoch = topology.Epoch, SourceTopicsResolved = resolved.ToList(), Statuses = statuses,
            MissingInternalTopics = creatable,
            Tasks = statuses.Count == 0 ? tasks : new Dictionary<string, int>(),
            InputTopics = inputs, Changelogs = changelogs,
        };
    }
}
