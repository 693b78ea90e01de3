namespace Samsa.Kafka.Broker.Groups.Streams;

/// <summary>
/// The streams group's server-side assignor ("sticky", upstream's only one,
/// streams/assignor/StickyTaskAssignor), written here from its rules rather than its code:
/// <list type="bullet">
/// <item>every active task goes to exactly one member; a task stays with the member that held it
/// (as active, else as standby) while that keeps the member within its share;</item>
/// <item>active tasks are balanced across members (counts differ by at most one);</item>
/// <item><c>num.standby.replicas</c> standby copies of each stateful task (one with a changelog)
/// go to members of other processes than the active copy — never to the member holding it, never
/// two copies in one process — preferring their previous holders, then the least loaded; missing
/// candidates mean fewer copies (upstream logs the same shortfall);</item>
/// <item>no warm-up tasks are planned (upstream's sticky assignor does not plan them either).</item>
/// </list>
/// Differences from upstream: balance is per member, not per process with members' capacities;
/// client tags/racks are not used.
/// </summary>
public static class StickyTaskAssignor
{
    public const string Name = "sticky";

    public sealed record MemberSpec(string MemberId, string ProcessId, TaskAssignment Previous);

    /// <param name="tasks">Sub-topology → task count.</param>
    /// <param name="stateful">Sub-topologies with changelog topics (only those get standbys).</param>
    public static Dictionary<string, TaskAssignment> Assign(IReadOnlyList<MemberSpec> members, IReadOnlyDictionary<string, int> tasks,
        IReadOnlySet<string> stateful, int numStandbyReplicas)
    {
        var result = new Dictionary<string, TaskAssignment>(StringComparer.Ordinal);
        foreach (var m in members) result[m.MemberId] = new TaskAssignment();
        if (members.Count == 0) return result;
        var ordered = members.OrderBy(m => m.MemberId, StringComparer.Ordinal).ToList();
        var all = tasks.OrderBy(t => t.Key, StringComparer.Ordinal)
            .SelectMany(t => Enumerable.Range(0, t.Value).Select(p => (t.Key, p))).ToList();
        int quota = (all.Count + members.Count - 1) / members.Count;
        var load = ordered.ToDictionary(m => m.MemberId, _ => 0, StringComparer.Ordinal);
        var unassigned = new List<(string S, int P)>();

        // 1. Keep active tasks with their previous holder within quota.
        foreach (var (s, p) in all)
        {
            var owner = ordered.FirstOrDefault(m => m.Previous.Active.Contains(s, p) && load[m.MemberId] < quota);
            if (owner is null) { unassigned.Add((s, p)); continue; }
            result[owner.MemberId].Active.Add(s, p);
            load[owner.MemberId]++;
        }
        // 2. The rest: a previous standby holder with room, else the least loaded member.
        foreach (var (s, p) in unassigned)
        {
            var target = ordered.Where(m => m.Previous.Standby.Contains(s, p) && load[m.MemberId] < quota)
                .OrderBy(m => load[m.MemberId]).FirstOrDefault()
                ?? ordered.OrderBy(m => load[m.MemberId]).First();
            result[target.MemberId].Active.Add(s, p);
            load[target.MemberId]++;
        }
        // 3. Even out: move from the most to the least loaded until they differ by at most one.
        while (true)
        {
            var max = ordered.OrderByDescending(m => load[m.MemberId]).First();
            var min = ordered.OrderBy(m => load[m.MemberId]).First();
            if (load[max.MemberId] - load[min.MemberId] <= 1) break;
            var move = result[max.MemberId].Active.All().First();
            result[max.MemberId].Active.Remove(move.Subtopology, move.Partition);
            result[min.MemberId].Active.Add(move.Subtopology, move.Partition);
            load[max.MemberId]--;
            load[min.MemberId]++;
        }

        // 4. Standby copies of stateful tasks on other processes.
        if (numStandbyReplicas > 0)
        {
            var standbyLoad = ordered.ToDictionary(m => m.MemberId, _ => 0, StringComparer.Ordinal);
            var activeOwner = new Dictionary<(string, int), MemberSpec>();
            foreach (var m in ordered) foreach (var t in result[m.MemberId].Active.All()) activeOwner[t] = m;
            foreach (var (s, p) in all)
            {
                if (!stateful.Contains(s)) continue;
                var usedProcesses = new HashSet<string>(StringComparer.Ordinal) { activeOwner[(s, p)].ProcessId };
                for (int copy = 0; copy < numStandbyReplicas; copy++)
                {
                    var target = ordered.Where(m => !usedProcesses.Contains(m.ProcessId))
                        .OrderBy(m => m.Previous.Standby.Contains(s, p) || m.Previous.Active.Contains(s, p) ? 0 : 1)
                        .ThenBy(m => standbyLoad[m.MemberId] + load[m.MemberId])
                        .FirstOrDefault();
                    if (target is null) break;
                    result[target.MemberId].Standby.Add(s, p);
                    standbyLoad[target.MemberId]++;
                    usedProcesses.Add(target.ProcessId);
                }
            }
        }
        return result;
    }
}
