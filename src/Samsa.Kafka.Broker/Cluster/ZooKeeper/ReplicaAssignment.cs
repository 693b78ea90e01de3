namespace Samsa.Kafka.Broker.Cluster.ZooKeeper;

/// <summary>
/// Spreads partition replicas over brokers the way upstream's AdminUtils.assignReplicasToBrokers
/// does: the first replica of partition p goes to broker (p + start) mod n of the sorted list,
/// the others follow with a shift that grows every n partitions, so leaders and followers are
/// both spread evenly. When every broker has a rack, the broker list alternates racks and a
/// replica is placed on a rack (and broker) without one already, while any is left.
/// </summary>
public static class ReplicaAssignment
{
    public sealed class AssignmentException(string message) : Exception(message);

    /// <param name="brokers">Live brokers and their racks (null when unset).</param>
    /// <param name="fixedStartIndex">-1 for a random start, as upstream; tests pass a fixed one.</param>
    public static SortedDictionary<int, List<int>> Assign(IReadOnlyList<(int Id, string? Rack)> brokers, int partitions, int replicationFactor,
        int fixedStartIndex = -1, int startPartitionId = 0, Random? random = null)
    {
        if (partitions <= 0) throw new AssignmentException("Number of partitions must be larger than 0.");
        if (replicationFactor <= 0) throw new AssignmentException("Replication factor must be larger than 0.");
        if (replicationFactor > brokers.Count)
            throw new AssignmentException($"Replication factor: {replicationFactor} larger than available brokers: {brokers.Count}.");
        random ??= Random.Shared;
        int withRack = brokers.Count(b => b.Rack is not null);
        if (withRack == 0)
            return Unaware(brokers.Select(b => b.Id).OrderBy(i => i).ToList(), partitions, replicationFactor, fixedStartIndex, startPartitionId, random);
        if (withRack < brokers.Count)
            throw new AssignmentException("Not all brokers have rack information for replica rack aware assignment.");
        return RackAware(brokers, partitions, replicationFactor, fixedStartIndex, startPartitionId, random);
    }

    private static int ReplicaIndex(int firstReplicaIndex, int secondReplicaShift, int replicaIndex, int nBrokers)
    {
        long shift = 1 + (secondReplicaShift + (long)replicaIndex) % (nBrokers - 1);
        return (int)((firstReplicaIndex + shift) % nBrokers);
    }

    private static SortedDictionary<int, List<int>> Unaware(List<int> ids, int partitions, int rf, int fixedStart, int startPartition, Random random)
    {
        var result = new SortedDictionary<int, List<int>>();
        int n = ids.Count;
        int startIndex = fixedStart >= 0 ? fixedStart : random.Next(n);
        int currentPartition = Math.Max(0, startPartition);
        int nextReplicaShift = fixedStart >= 0 ? fixedStart : random.Next(n);
        for (int i = 0; i < partitions; i++)
        {
            if (currentPartition > 0 && currentPartition % n == 0) nextReplicaShift++;
            int first = (currentPartition + startIndex) % n;
            var replicas = new List<int> { ids[first] };
            for (int j = 0; j < rf - 1; j++) replicas.Add(ids[ReplicaIndex(first, nextReplicaShift, j, n)]);
            result[currentPartition] = replicas;
            currentPartition++;
        }
        return result;
    }

    /// <summary>Brokers ordered rack by rack in turn (racks and brokers sorted): with racks a:{1,2},
    /// b:{3}, c:{4,5} the order is 1,3,4,2,5.</summary>
    internal static List<int> RackAlternated(IReadOnlyList<(int Id, string? Rack)> brokers)
    {
        var byRack = brokers.GroupBy(b => b.Rack!).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new Queue<int>(g.Select(b => b.Id).OrderBy(i => i))).ToList();
        var result = new List<int>(brokers.Count);
        while (result.Count < brokers.Count)
            foreach (var q in byRack)
                if (q.Count > 0) result.Add(q.Dequeue());
        return result;
    }

    private static SortedDictionary<int, List<int>> RackAware(IReadOnlyList<(int Id, string? Rack)> brokers, int partitions, int rf,
        int fixedStart, int startPartition, Random random)
    {
        var rackOf = brokers.ToDictionary(b => b.Id, b => b.Rack!);
        int numRacks = rackOf.Values.Distinct().Count();
        var arranged = RackAlternated(brokers);
        int n = arranged.Count;
        var result = new SortedDictionary<int, List<int>>();
        int startIndex = fixedStart >= 0 ? fixedStart : random.Next(n);
        int currentPartition = Math.Max(0, startPartition);
        int nextReplicaShift = fixedStart >= 0 ? fixedStart : random.Next(n);
        for (int i = 0; i < partitions; i++)
        {
            if (currentPartition > 0 && currentPartition % n == 0) nextReplicaShift++;
            int first = (currentPartition + startIndex) % n;
            int leader = arranged[first];
            var replicas = new List<int> { leader };
            var racksWithReplicas = new HashSet<string> { rackOf[leader] };
            var brokersWithReplicas = new HashSet<int> { leader };
            int k = 0;
            for (int r = 0; r < rf - 1; r++)
            {
                while (true)
                {
                    int broker = arranged[ReplicaIndex(first, nextReplicaShift * numRacks, k, n)];
                    k++;
                    string rack = rackOf[broker];
                    // A rack (or broker) is used again only once every rack (broker) holds a replica.
                    if ((!racksWithReplicas.Contains(rack) || racksWithReplicas.Count == numRacks)
                        && (!brokersWithReplicas.Contains(broker) || brokersWithReplicas.Count == n))
                    {
                        replicas.Add(broker);
                        racksWithReplicas.Add(rack);
                        brokersWithReplicas.Add(broker);
                        break;
                    }
                }
            }
            result[currentPartition] = replicas;
            currentPartition++;
        }
        return result;
    }
}
