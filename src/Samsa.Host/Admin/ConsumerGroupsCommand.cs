using System.Globalization;
using System.Text;
using Samsa.Kafka.Broker.Groups;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host.Admin;

/// <summary>
/// <c>samsa kafka-consumer-groups</c>: upstream's kafka-consumer-groups.sh (ConsumerGroupCommand) —
/// list, describe (offsets, members, state), delete, reset-offsets — with its column layout.
/// </summary>
internal static class ConsumerGroupsCommand
{
    private const string Tool = "kafka-consumer-groups";
    private const string Missing = "-";

    private static readonly HashSet<string> WithValue =
        ["--bootstrap-server", "--command-config", "--group", "--topic", "--to-offset", "--shift-by", "--state", "--type", "--timeout"];
    private static readonly HashSet<string> Flags =
        ["--list", "--describe", "--delete", "--reset-offsets", "--members", "--offsets", "--verbose", "--all-groups", "--all-topics",
         "--to-earliest", "--to-latest", "--to-current", "--execute", "--dry-run", "--help", "--state", "--type"];

    public const string Usage =
        "usage: samsa kafka-consumer-groups --bootstrap-server HOST:PORT [--command-config FILE]\n" +
        "         --list [--state [S,..]] [--type [T,..]]\n" +
        "       | --describe (--group G ... | --all-groups) [--members [--verbose] | --offsets | --state]\n" +
        "       | --delete (--group G ... | --all-groups)\n" +
        "       | --reset-offsets (--group G ... | --all-groups) (--topic T[:P,P] ... | --all-topics)\n" +
        "           (--to-earliest | --to-latest | --to-current | --to-offset N | --shift-by N) [--execute | --dry-run]\n";

    /// <summary>What the tool shows of a group, from DescribeGroups (classic) or ConsumerGroupDescribe (KIP-848).</summary>
    internal sealed record Member(string MemberId, string InstanceId, string ClientId, string Host, List<(string Topic, int Partition)> Assignment);
    internal sealed record Group(string Id, string State, string Assignor, List<Member> Members, AdminClient.Node Coordinator, AdminClient.Conn Conn);

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error)
    {
        // --state is a flag under --describe and takes an optional value under --list: take a value only when one follows.
        argv = NormalizeOptionalValues(argv);
        var args = new AdminArgs(Tool, argv, WithValue, Flags);
        if (args.Has("--help")) { output.Write(Usage); return 0; }
        string[] actions = ["--list", "--describe", "--delete", "--reset-offsets"];
        if (actions.Count(args.Has) != 1)
            throw new UsageException($"{Tool}: Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets");
        string bootstrap = args.Required(Tool, "--bootstrap-server");
        var props = args.Get("--command-config") is { } cc ? AdminArgs.LoadProperties(cc) : null;
        if (!args.Has("--list") && args.All("--group").Count == 0 && !args.Has("--all-groups"))
        {
            string action = actions.First(args.Has);
            throw new UsageException($"{Tool}: Option {action} takes one of these options: --all-groups, --group");
        }
        if (args.Has("--reset-offsets"))
        {
            if (args.Has("--execute") && args.Has("--dry-run"))
                throw new UsageException($"{Tool}: Option --reset-offsets only accepts one of --execute and --dry-run");
            string[] scenarios = ["--to-earliest", "--to-latest", "--to-current", "--to-offset", "--shift-by"];
            if (scenarios.Count(args.Has) != 1)
                throw new UsageException($"{Tool}: Option '--reset-offsets' requires one of the following scenarios: [{string.Join(", ", scenarios)}]");
            if (args.All("--topic").Count == 0 && !args.Has("--all-topics"))
                throw new UsageException($"{Tool}: Option --reset-offsets takes one of these options: --all-topics, --topic");
            if (!args.Has("--execute") && !args.Has("--dry-run"))
                error.WriteLine("WARN: No action will be performed as the --execute option is missing." +
                    "In a future major release, the default behavior of this command will be to prompt the user before " +
                    "executing the reset rather than doing a dry run. You should add the --dry-run option explicitly " +
                    "if you are scripting this command and want to keep the current default behavior without prompting.");
        }
        await using var admin = new AdminClient(bootstrap, props);
        try
        {
            if (args.Has("--list")) await ListAsync(admin, args, output);
            else if (args.Has("--describe")) await DescribeAsync(admin, args, output, error);
            else if (args.Has("--delete")) await DeleteAsync(admin, args, output);
            else await ResetAsync(admin, args, output);
            return 0;
        }
        catch (Exception e) when (e is AdminException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            output.WriteLine("\nError: Executing consumer group command failed due to " + (e is OperationCanceledException ? "Timed out waiting for a response" : e.Message));
            return 1;
        }
    }

    private static string[] NormalizeOptionalValues(string[] argv)
    {
        var list = new List<string>();
        for (int i = 0; i < argv.Length; i++)
        {
            if (argv[i] is "--state" or "--type")
            {
                if (i + 1 < argv.Length && !argv[i + 1].StartsWith("--", StringComparison.Ordinal)) { list.Add(argv[i] + "=" + argv[++i]); continue; }
            }
            list.Add(argv[i]);
        }
        return list.ToArray();
    }

    // ------------------------------------------------------------------ list

    private sealed record Listed(string GroupId, string State, string Type);

    private static async Task<List<Listed>> ListGroupsAsync(AdminClient admin)
    {
        await admin.MetadataAsync([]);
        var result = new Dictionary<string, Listed>();
        foreach (var id in admin.Brokers.Keys.Order())
        {
            var conn = await admin.NodeAsync(id);
            short v = conn.Version(ApiKey.ListGroups, 5);
            var r = await admin.SendAsync<ListGroupsResponse>(conn, new ListGroupsRequest(), v);
            if (r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, null);
            foreach (var g in r.Groups)
            {
                // Upstream lists consumer groups: the classic groups with protocol type "consumer" or none, and KIP-848 groups.
                if (g.ProtocolType is not ("consumer" or "") && g.GroupType != "consumer") continue;
                string type = string.IsNullOrEmpty(g.GroupType) ? "Classic" : Title(g.GroupType);
                result[g.GroupId] = new Listed(g.GroupId, v >= 4 ? StateName(g.GroupState) : "Unknown", type);
            }
        }
        return result.Values.ToList();
    }

    private static async Task ListAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        var groups = await ListGroupsAsync(admin);
        bool withState = args.Has("--state"), withType = args.Has("--type");
        if (!withState && !withType)
        {
            foreach (var g in groups) output.WriteLine(g.GroupId);
            return;
        }
        var states = Filter(args.Get("--state"));
        var types = Filter(args.Get("--type"));
        groups = groups.Where(g => (states.Count == 0 || states.Contains(g.State.ToLowerInvariant())) && (types.Count == 0 || types.Contains(g.Type.ToLowerInvariant()))).ToList();
        int width = groups.Select(g => Math.Max(15, g.GroupId.Length)).DefaultIfEmpty(15).Max() + 10;
        var header = new List<string> { Pad("GROUP", width) };
        if (withType) header.Add(Pad("TYPE", 20));
        if (withState) header.Add(Pad("STATE", 20));
        output.WriteLine(string.Join(" ", header));
        foreach (var g in groups)
        {
            var row = new List<string> { Pad(g.GroupId, width) };
            if (withType) row.Add(Pad(g.Type, 20));
            if (withState) row.Add(Pad(g.State, 20));
            output.WriteLine(string.Join(" ", row));
        }
    }

    private static HashSet<string> Filter(string? value) =>
        (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => s.ToLowerInvariant()).ToHashSet();

    // ------------------------------------------------------------------ describe

    private static async Task<List<string>> GroupIdsAsync(AdminClient admin, AdminArgs args) =>
        args.Has("--all-groups") ? (await ListGroupsAsync(admin)).Select(g => g.GroupId).ToList() : args.All("--group").ToList();

    internal static async Task<Group> DescribeGroupAsync(AdminClient admin, string groupId)
    {
        AdminClient.Conn conn = null!;
        var (first, node) = await admin.CoordinatorAsync(groupId);
        if (TrySupports(first, ApiKey.ConsumerGroupDescribe))
        {
            var r = await admin.AtCoordinatorAsync(groupId, c => admin.SendAsync<ConsumerGroupDescribeResponse>(conn = c, new ConsumerGroupDescribeRequest { GroupIds = [groupId] }, ApiKey.ConsumerGroupDescribe, 0),
                r => r.Groups.Select(g => g.ErrorCode));
            node = admin.LastCoordinator!;
            var g = r.Groups.FirstOrDefault();
            if (g is not null && g.ErrorCode == 0)
            {
                var members = g.Members.Select(m => new Member(m.MemberId, m.InstanceId ?? "", m.ClientId, m.ClientHost,
                    m.Assignment.TopicPartitions.SelectMany(tp => tp.Partitions.Select(p => (tp.TopicName, p))).ToList())).ToList();
                return new Group(groupId, StateName(g.GroupState), g.AssignorName, members, node, conn);
            }
            // GROUP_ID_NOT_FOUND (a classic group, or none) and UNSUPPORTED_VERSION fall through to DescribeGroups, as upstream does.
            if (g is not null && g.ErrorCode is not ((short)ErrorCode.GroupIdNotFound or (short)ErrorCode.UnsupportedVersion))
                throw AdminException.From(g.ErrorCode, g.ErrorMessage);
        }
        var d = await admin.AtCoordinatorAsync(groupId, c => admin.SendAsync<DescribeGroupsResponse>(conn = c, new DescribeGroupsRequest { Groups = [groupId] }, ApiKey.DescribeGroups, 5),
            r => r.Groups.Select(g => g.ErrorCode));
        node = admin.LastCoordinator!;
        var dg = d.Groups.FirstOrDefault() ?? throw new AdminException($"no description of group {groupId}");
        if (dg.ErrorCode != 0 && dg.ErrorCode != (short)ErrorCode.GroupIdNotFound) throw AdminException.From(dg.ErrorCode, dg.ErrorMessage);
        if (dg.ErrorCode == (short)ErrorCode.GroupIdNotFound) return new Group(groupId, "Dead", "", [], node, conn);
        if (dg.ProtocolType is not ("consumer" or "") )
            throw new AdminException($"Group {groupId} is not a consumer group (protocol type {dg.ProtocolType}).", ErrorCode.InvalidGroupId);
        var classic = dg.Members.Select(m => new Member(m.MemberId, m.GroupInstanceId ?? "", m.ClientId, m.ClientHost,
            (m.MemberAssignment is { Length: > 0 } a ? ConsumerProtocolCodec.ReadAssignment(a) : null)?.ToList() ?? [])).ToList();
        return new Group(groupId, StateName(dg.GroupState), dg.ProtocolData, classic, node, conn);
    }

    private static bool TrySupports(AdminClient.Conn conn, ApiKey key)
    {
        try { conn.Version(key, 1); return true; }
        catch (AdminException) { return false; }
    }

    private static string Title(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Upstream's state names: classic "PreparingRebalance" etc. as sent; KIP-848's lowercase names capitalised.</summary>
    private static string StateName(string s) => s switch
    {
        "" => "Unknown",
        "empty" or "assigning" or "reconciling" or "stable" or "dead" or "notready" => s == "notready" ? "NotReady" : Title(s),
        _ => s,
    };

    /// <summary>The group's committed offsets (OffsetFetch for all partitions); partitions without one are left out.</summary>
    internal static async Task<SortedDictionary<(string Topic, int Partition), long>> CommittedAsync(AdminClient admin, Group group)
    {
        short v = group.Conn.Version(ApiKey.OffsetFetch, 7);
        var r = await admin.AtCoordinatorAsync(group.Id, c => admin.SendAsync<OffsetFetchResponse>(c, new OffsetFetchRequest { GroupId = group.Id, Topics = null! }, v),
            r => r.Topics.SelectMany(t => t.Partitions.Select(p => p.ErrorCode)).Append(v >= 2 ? r.ErrorCode : (short)0));
        if (v >= 2 && r.ErrorCode != 0) throw AdminException.From(r.ErrorCode, null);
        var result = new SortedDictionary<(string, int), long>(Comparer<(string Topic, int Partition)>.Create((a, b) =>
            string.CompareOrdinal(a.Topic, b.Topic) is var c && c != 0 ? c : a.Partition.CompareTo(b.Partition)));
        foreach (var t in r.Topics)
            foreach (var p in t.Partitions)
                if (p.ErrorCode == 0 && p.CommittedOffset >= 0) result[(t.Name, p.PartitionIndex)] = p.CommittedOffset;
        return result;
    }

    /// <summary>ListOffsets at each partition's leader: -1 latest, -2 earliest. Partitions whose leader or topic is unknown are left out.</summary>
    internal static async Task<Dictionary<(string Topic, int Partition), long>> LogOffsetsAsync(AdminClient admin, IEnumerable<(string Topic, int Partition)> partitions, long timestamp)
    {
        var list = partitions.Distinct().ToList();
        var result = new Dictionary<(string, int), long>();
        if (list.Count == 0) return result;
        var metadata = await admin.MetadataAsync(list.Select(p => p.Topic).Distinct().ToList());
        var leaders = new Dictionary<(string, int), int>();
        foreach (var t in metadata.Topics)
            foreach (var p in t.Partitions)
                leaders[(t.Name!, p.PartitionIndex)] = p.LeaderId;
        foreach (var byLeader in list.Where(leaders.ContainsKey).GroupBy(p => leaders[p]))
        {
            if (byLeader.Key < 0) continue;
            var conn = await admin.NodeAsync(byLeader.Key);
            var request = new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics = byLeader.GroupBy(p => p.Topic).Select(t => new ListOffsetsRequest.ListOffsetsTopic
                {
                    Name = t.Key,
                    Partitions = t.Select(p => new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = p.Partition, Timestamp = timestamp, CurrentLeaderEpoch = -1 }).ToList(),
                }).ToList(),
            };
            var r = await admin.SendAsync<ListOffsetsResponse>(conn, request, ApiKey.ListOffsets, 7);
            foreach (var t in r.Topics)
                foreach (var p in t.Partitions)
                    if (p.ErrorCode == 0) result[(t.Name, p.PartitionIndex)] = p.Offset;
        }
        return result;
    }

    /// <summary>Upstream's check before printing a group: false when it does not exist or has no rows.</summary>
    private static bool ShouldPrint(Group g, int rows, TextWriter output, TextWriter error)
    {
        switch (g.State)
        {
            case "Dead":
                output.WriteLine($"\nError: Consumer group '{g.Id}' does not exist.");
                return false;
            case "Empty":
                error.WriteLine($"\nConsumer group '{g.Id}' has no active members.");
                break;
            case "PreparingRebalance" or "CompletingRebalance" or "Assigning" or "Reconciling":
                error.WriteLine($"\nWarning: Consumer group '{g.Id}' is rebalancing.");
                break;
        }
        return rows > 0;
    }

    private static string Pad(string s, int width) => s.Length >= width ? s : s + new string(' ', width - s.Length);

    private static async Task DescribeAsync(AdminClient admin, AdminArgs args, TextWriter output, TextWriter error)
    {
        bool members = args.Has("--members"), state = args.Has("--state"), offsets = args.Has("--offsets");
        if ((members ? 1 : 0) + (state ? 1 : 0) + (offsets ? 1 : 0) > 1)
            throw new UsageException($"{Tool}: Option --describe takes at most one of these options: --members, --offsets, --state");
        foreach (var id in (await GroupIdsAsync(admin, args)).Order(StringComparer.Ordinal))
        {
            var group = await DescribeGroupAsync(admin, id);
            if (members) PrintMembers(group, args.Has("--verbose"), output, error);
            else if (state) PrintState(group, output, error);
            else await PrintOffsetsAsync(admin, group, output, error);
        }
    }

    private static async Task PrintOffsetsAsync(AdminClient admin, Group group, TextWriter output, TextWriter error)
    {
        if (group.State == "Dead") { ShouldPrint(group, 0, output, error); return; }
        var committed = await CommittedAsync(admin, group);
        var rows = new List<string[]>();
        var assigned = new HashSet<(string, int)>();
        var withAssignment = group.Members.Where(m => m.Assignment.Count > 0).OrderByDescending(m => m.Assignment.Count).ToList();
        var allPartitions = withAssignment.SelectMany(m => m.Assignment).Concat(committed.Keys).ToList();
        var ends = await LogOffsetsAsync(admin, allPartitions, -1);
        void AddRow((string Topic, int Partition) tp, string consumer, string host, string client)
        {
            long? offset = committed.TryGetValue(tp, out long o) ? o : null;
            long? end = ends.TryGetValue(tp, out long e) ? e : null;
            string lag = offset is { } a && end is { } b ? (b - a).ToString(CultureInfo.InvariantCulture) : Missing;
            rows.Add([group.Id, tp.Topic, tp.Partition.ToString(CultureInfo.InvariantCulture), offset?.ToString(CultureInfo.InvariantCulture) ?? Missing,
                end?.ToString(CultureInfo.InvariantCulture) ?? Missing, lag, consumer, host, client]);
        }
        foreach (var m in withAssignment)
            foreach (var tp in m.Assignment.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition))
            {
                assigned.Add(tp);
                AddRow(tp, m.MemberId, m.Host, m.ClientId);
            }
        foreach (var tp in committed.Keys.Where(tp => !assigned.Contains(tp)))
            AddRow(tp, Missing, Missing, Missing);
        if (!ShouldPrint(group, rows.Count, output, error)) return;
        int gw = Math.Max(15, rows.Max(r => r[0].Length)), tw = Math.Max(15, rows.Max(r => r[1].Length));
        int cw = Math.Max(15, rows.Max(r => r[6].Length)), hw = Math.Max(15, rows.Max(r => r[7].Length));
        string Line(string[] r) => $"\n{Pad(r[0], gw)} {Pad(r[1], tw)} {Pad(r[2], 10)} {Pad(r[3], 15)} {Pad(r[4], 15)} {Pad(r[5], 15)} {Pad(r[6], cw)} {Pad(r[7], hw)} {r[8]}";
        var sb = new StringBuilder(Line(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]));
        foreach (var r in rows) sb.Append(Line(r));
        output.WriteLine(sb.ToString());
    }

    private static void PrintMembers(Group group, bool verbose, TextWriter output, TextWriter error)
    {
        if (!ShouldPrint(group, group.Members.Count, output, error) && group.State == "Dead") return;
        var ms = group.Members;
        int gw = 15, cw = 15, iw = 17, hw = 15, clw = 15;
        bool withInstance = false;
        if (group.State != "Dead" && ms.Count > 0)
            foreach (var m in ms)
            {
                gw = Math.Max(gw, group.Id.Length); cw = Math.Max(cw, m.MemberId.Length); iw = Math.Max(iw, m.InstanceId.Length);
                hw = Math.Max(hw, m.Host.Length); clw = Math.Max(clw, m.ClientId.Length); withInstance |= m.InstanceId.Length > 0;
            }
        string Row(string g, string c, string i, string h, string cl, string n) =>
            withInstance ? $"{Pad(g, gw)} {Pad(c, cw)} {Pad(i, iw)} {Pad(h, hw)} {Pad(cl, clw)} {Pad(n, 15)} " : $"{Pad(g, gw)} {Pad(c, cw)} {Pad(h, hw)} {Pad(cl, clw)} {Pad(n, 15)} ";
        output.Write("\n" + Row("GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"));
        if (verbose) output.Write("ASSIGNMENT");
        output.WriteLine();
        foreach (var m in ms)
        {
            output.Write(Row(group.Id, m.MemberId, m.InstanceId, m.Host, m.ClientId, m.Assignment.Count.ToString(CultureInfo.InvariantCulture)));
            if (verbose)
                output.Write(m.Assignment.Count == 0 ? Missing : string.Join(", ", m.Assignment.GroupBy(p => p.Topic)
                    .Select(t => t.Key + "(" + string.Join(",", t.Select(p => p.Partition.ToString(CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal)) + ")")
                    .Order(StringComparer.Ordinal)));
            output.WriteLine();
        }
    }

    private static void PrintState(Group group, TextWriter output, TextWriter error)
    {
        if (!ShouldPrint(group, 1, output, error)) return;
        string coordinator = $"{group.Coordinator.Host}:{group.Coordinator.Port}  ({group.Coordinator.Id})";
        int width = Math.Max(25, coordinator.Length);
        string Line(string a, string b, string c, string d, string e) => $"\n{Pad(a, width)} {Pad(b, 25)} {Pad(c, 20)} {Pad(d, 15)} {e}";
        output.WriteLine(Line("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
            + Line(group.Id, coordinator, group.Assignor, group.State, group.Members.Count.ToString(CultureInfo.InvariantCulture)));
    }

    // ------------------------------------------------------------------ delete

    private static async Task DeleteAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        var ok = new List<string>();
        var failed = new List<(string Group, string Error)>();
        foreach (var id in await GroupIdsAsync(admin, args))
        {
            var r = await admin.AtCoordinatorAsync(id, c => admin.SendAsync<DeleteGroupsResponse>(c, new DeleteGroupsRequest { GroupsNames = [id] }, ApiKey.DeleteGroups, 2),
                r => r.Results.Select(x => x.ErrorCode));
            var result = r.Results.FirstOrDefault(x => x.GroupId == id);
            if (result is null || result.ErrorCode == 0) ok.Add(id);
            else failed.Add((id, $"java.util.concurrent.ExecutionException: org.apache.kafka.common.errors.{ExceptionName(ErrorCodes.FromWire(result.ErrorCode))}: {ErrorCodes.DefaultMessage(ErrorCodes.FromWire(result.ErrorCode))}"));
        }
        if (failed.Count == 0)
            output.WriteLine($"Deletion of requested consumer groups ('{string.Join(", ", ok)}') was successful.");
        else
        {
            output.WriteLine("\nError: Deletion of some consumer groups failed:");
            foreach (var (g, e) in failed) output.WriteLine($"* Group '{g}' could not be deleted due to: {e}");
            if (ok.Count > 0) output.WriteLine($"\nThese consumer groups were deleted successfully: '{string.Join("'", ok)}', '");
        }
    }

    private static string ExceptionName(ErrorCode code) => code switch
    {
        ErrorCode.NonEmptyGroup => "GroupNotEmptyException",
        ErrorCode.GroupIdNotFound => "GroupIdNotFoundException",
        ErrorCode.GroupAuthorizationFailed => "GroupAuthorizationException",
        _ => code + "Exception",
    };

    // ------------------------------------------------------------------ reset-offsets

    private static async Task ResetAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        bool execute = args.Has("--execute");
        var plans = new List<(string Group, List<((string Topic, int Partition) Tp, long Offset)> Offsets)>();
        foreach (var id in await GroupIdsAsync(admin, args))
        {
            var group = await DescribeGroupAsync(admin, id);
            if (group.State is not ("Empty" or "Dead"))
            {
                output.WriteLine($"\nError: Assignments can only be reset if the group '{id}' is inactive, but the current state is {group.State}.");
                plans.Add((id, []));
                continue;
            }
            var committed = await CommittedAsync(admin, group);
            var partitions = await PartitionsToResetAsync(admin, args, committed);
            var plan = new List<((string, int), long)>();
            if (args.Has("--to-earliest") || args.Has("--to-latest"))
            {
                var offs = await LogOffsetsAsync(admin, partitions, args.Has("--to-earliest") ? -2 : -1);
                foreach (var tp in partitions)
                    plan.Add((tp, offs.TryGetValue(tp, out long o) ? o : throw new AdminException($"Error getting {(args.Has("--to-earliest") ? "starting" : "ending")} offset of topic partition: {tp.Topic}-{tp.Partition}")));
            }
            else if (args.Has("--to-current"))
            {
                var ends = await LogOffsetsAsync(admin, partitions, -1);
                foreach (var tp in partitions)
                    plan.Add((tp, committed.TryGetValue(tp, out long c) ? c : ends.TryGetValue(tp, out long e) ? e : throw new AdminException($"Error getting ending offset of topic partition: {tp.Topic}-{tp.Partition}")));
            }
            else
            {
                var requested = new List<((string, int) Tp, long Offset)>();
                foreach (var tp in partitions)
                {
                    if (args.Has("--to-offset")) requested.Add((tp, args.Long(Tool, "--to-offset")!.Value));
                    else if (committed.TryGetValue(tp, out long c)) requested.Add((tp, c + args.Long(Tool, "--shift-by")!.Value));
                    else throw new AdminException($"Cannot shift offset for partition {tp.Topic}-{tp.Partition} since there is no current committed offset");
                }
                var starts = await LogOffsetsAsync(admin, partitions, -2);
                var ends = await LogOffsetsAsync(admin, partitions, -1);
                foreach (var (tp, offset) in requested)
                {
                    // Upstream clamps to [log start, log end] and logs a warning for each clamped partition.
                    long value = offset;
                    if (ends.TryGetValue(tp, out long end) && offset > end) value = end;
                    else if (starts.TryGetValue(tp, out long start) && offset < start) value = start;
                    plan.Add((tp, value));
                }
            }
            if (execute && plan.Count > 0)
            {
                var conn = group.Conn;   // the version; the request goes to the coordinator found again if it moved
                short v = conn.Version(ApiKey.OffsetCommit, 8);
                var request = new OffsetCommitRequest
                {
                    GroupId = id,
                    GenerationIdOrMemberEpoch = -1,
                    MemberId = "",
                    RetentionTimeMs = -1,
                    Topics = plan.GroupBy(p => p.Item1.Item1).Select(t => new OffsetCommitRequest.OffsetCommitRequestTopic
                    {
                        Name = t.Key,
                        Partitions = t.Select(p => new OffsetCommitRequest.OffsetCommitRequestPartition
                        {
                            PartitionIndex = p.Item1.Item2, CommittedOffset = p.Item2, CommittedLeaderEpoch = -1, CommitTimestamp = -1, CommittedMetadata = "",
                        }).ToList(),
                    }).ToList(),
                };
                var r = await admin.AtCoordinatorAsync(id, c => admin.SendAsync<OffsetCommitResponse>(c, request, v), r => r.Topics.SelectMany(t => t.Partitions.Select(p => p.ErrorCode)));
                foreach (var t in r.Topics)
                    foreach (var p in t.Partitions)
                        if (p.ErrorCode != 0) throw AdminException.From(p.ErrorCode, null);
            }
            plans.Add((id, plan));
        }
        if (plans.Count == 0) { output.WriteLine(); return; }
        string Line(string a, string b, string c, string d) => $"\n{Pad(a, 30)} {Pad(b, 30)} {Pad(c, 10)} {Pad(d, 15)}";
        var sb = new StringBuilder(Line("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"));
        foreach (var (g, offsets) in plans)
            foreach (var ((t, p), o) in offsets)
                sb.Append(Line(g, t, p.ToString(CultureInfo.InvariantCulture), o.ToString(CultureInfo.InvariantCulture)));
        output.WriteLine(sb.ToString());
    }

    /// <summary>--topic T (every partition), --topic T:0,2 (those), or --all-topics (every partition the group has committed).</summary>
    private static async Task<List<(string Topic, int Partition)>> PartitionsToResetAsync(AdminClient admin, AdminArgs args, SortedDictionary<(string Topic, int Partition), long> committed)
    {
        if (args.Has("--all-topics")) return committed.Keys.ToList();
        var result = new List<(string, int)>();
        var whole = new List<string>();
        foreach (var spec in args.All("--topic"))
        {
            int colon = spec.IndexOf(':');
            if (colon < 0) { whole.Add(spec); continue; }
            foreach (var p in spec[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                result.Add((spec[..colon], int.Parse(p, CultureInfo.InvariantCulture)));
        }
        if (whole.Count > 0)
        {
            var metadata = await admin.MetadataAsync(whole);
            foreach (var t in metadata.Topics)
            {
                if (t.ErrorCode != 0) throw new AdminException($"Error: topic '{t.Name}' does not exist: {ErrorCodes.DefaultMessage(ErrorCodes.FromWire(t.ErrorCode))}", ErrorCodes.FromWire(t.ErrorCode));
                foreach (var p in t.Partitions.OrderBy(p => p.PartitionIndex)) result.Add((t.Name!, p.PartitionIndex));
            }
        }
        return result;
    }
}
