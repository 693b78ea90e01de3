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
        ["--bootstrap-server", "--command-config", "--group", "--topic", "--to-offset", "--shift-by", "--state", "--type", "--timeout",
         "--to-datetime", "--by-duration", "--from-file"];
    private static readonly HashSet<string> Flags =
        ["--list", "--describe", "--delete", "--reset-offsets", "--members", "--offsets", "--verbose", "--all-groups", "--all-topics",
         "--to-earliest", "--to-latest", "--to-current", "--execute", "--dry-run", "--help", "--state", "--type", "--delete-offsets", "--export"];

    public const string Usage =
        "usage: samsa kafka-consumer-groups --bootstrap-server HOST:PORT [--command-config FILE]\n" +
        "         --list [--state [S,..]] [--type [T,..]]\n" +
        "       | --describe (--group G ... | --all-groups) [--members [--verbose] | --offsets | --state]\n" +
        "       | --delete (--group G ... | --all-groups)\n" +
        "       | --reset-offsets (--group G ... | --all-groups) (--topic T[:P,P] ... | --all-topics)\n" +
        "           (--to-earliest | --to-latest | --to-current | --to-offset N | --shift-by N | --to-datetime YYYY-MM-DDTHH:mm:SS.sss\n" +
        "            | --by-duration PnDTnHnMnS | --from-file CSV) [--execute | --dry-run] [--export]\n" +
        "       | --delete-offsets --group G --topic T[:P,P] ...\n" +
        "       [--timeout MS]  (default 5000: how long requests may take)\n";

    /// <summary>What the tool shows of a group, from DescribeGroups (classic) or ConsumerGroupDescribe (KIP-848).</summary>
    internal sealed record Member(string MemberId, string InstanceId, string ClientId, string Host, List<(string Topic, int Partition)> Assignment);
    internal sealed record Group(string Id, string State, string Assignor, List<Member> Members, AdminClient.Node Coordinator, AdminClient.Conn Conn);

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error)
    {
        // --state is a flag under --describe and takes an optional value under --list: take a value only when one follows.
        argv = NormalizeOptionalValues(argv);
        var args = new AdminArgs(Tool, argv, WithValue, Flags);
        if (args.Has("--help")) { output.Write(Usage); return 0; }
        string[] actions = ["--list", "--describe", "--delete", "--reset-offsets", "--delete-offsets"];
        if (actions.Count(args.Has) != 1)
            throw new UsageException($"{Tool}: Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets");
        string bootstrap = args.Required(Tool, "--bootstrap-server");
        var props = args.Get("--command-config") is { } cc ? AdminArgs.LoadProperties(cc) : null;
        if (args.Has("--delete-offsets") && (args.All("--group").Count == 0 || args.All("--topic").Count == 0))
            throw new UsageException($"{Tool}: Option --delete-offsets takes the following options: --group, --topic");
        if (args.Has("--delete") && args.All("--topic").Count > 0)
            throw new UsageException($"{Tool}: The consumer does not support topic-specific offset deletion from a consumer group.");
        if (!args.Has("--list") && args.All("--group").Count == 0 && !args.Has("--all-groups"))
        {
            string action = actions.First(args.Has);
            throw new UsageException($"{Tool}: Option {action} takes one of these options: --all-groups, --group");
        }
        if (args.Has("--reset-offsets"))
        {
            if (args.Has("--execute") && args.Has("--dry-run"))
                throw new UsageException($"{Tool}: Option --reset-offsets only accepts one of --execute and --dry-run");
            string[] scenarios = ["--to-offset", "--shift-by", "--to-datetime", "--by-duration", "--to-earliest", "--to-latest", "--to-current", "--from-file"];
            if (scenarios.Count(args.Has) > 1)
            {
                string first = scenarios.First(args.Has);
                throw new UsageException($"{Tool}: Option \"{first}\" can't be used with option \"{scenarios.Last(args.Has)}\"");
            }
            if (scenarios.Count(args.Has) != 1)
                throw new UsageException($"{Tool}: Option '--reset-offsets' requires one of the following scenarios: [{string.Join(", ", scenarios)}]");
            if (args.All("--topic").Count == 0 && !args.Has("--all-topics") && !args.Has("--from-file"))
                throw new UsageException($"{Tool}: Option --reset-offsets takes one of these options: --all-topics, --topic");
            if (!args.Has("--execute") && !args.Has("--dry-run"))
                error.WriteLine("WARN: No action will be performed as the --execute option is missing." +
                    "In a future major release, the default behavior of this command will be to prompt the user before " +
                    "executing the reset rather than doing a dry run. You should add the --dry-run option explicitly " +
                    "if you are scripting this command and want to keep the current default behavior without prompting.");
        }
        var timeout = args.Long(Tool, "--timeout") is { } ms ? TimeSpan.FromMilliseconds(Math.Max(1, ms)) : (TimeSpan?)null;
        await using var admin = new AdminClient(bootstrap, props, timeout);
        try
        {
            if (args.Has("--list")) await ListAsync(admin, args, output);
            else if (args.Has("--describe")) await DescribeAsync(admin, args, output, error);
            else if (args.Has("--delete")) await DeleteAsync(admin, args, output);
            else if (args.Has("--delete-offsets")) return await DeleteOffsetsAsync(admin, args, output);
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
        Dictionary<string, Dictionary<(string, int), long>>? resetPlan = null;
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
            Dictionary<(string, int), long>? fromFile = null;
            if (args.Has("--from-file"))
            {
                fromFile = (resetPlan ??= ReadResetPlan(args)).GetValueOrDefault(id);
                if (fromFile is null)
                {
                    output.WriteLine($"\nError: No reset plan for group {id} found");
                    plans.Add((id, []));
                    continue;
                }
            }
            if (args.Has("--to-datetime") || args.Has("--by-duration"))
            {
                long timestamp = args.Has("--to-datetime") ? ParseDateTime(args.Get("--to-datetime")!) : DateTimeOffset.UtcNow.Subtract(ParseDuration(args.Get("--by-duration")!)).ToUnixTimeMilliseconds();
                var found = await LogOffsetsAsync(admin, partitions, timestamp);
                var empty = partitions.Where(tp => found.GetValueOrDefault(tp, -1) < 0).ToList();
                foreach (var tp in empty) output.WriteLine($"\nWarn: Partition {tp.Partition} from topic {tp.Topic} is empty. Falling back to latest known offset.");
                var ends = await LogOffsetsAsync(admin, empty, -1);
                foreach (var tp in partitions)
                    plan.Add((tp, found.TryGetValue(tp, out long o) && o >= 0 ? o : ends.TryGetValue(tp, out long e) ? e
                        : throw new AdminException($"Error getting offset by timestamp of topic partition: {tp.Topic}-{tp.Partition}")));
            }
            else if (args.Has("--to-earliest") || args.Has("--to-latest"))
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
                if (fromFile is not null) partitions = fromFile.Keys.ToList();
                foreach (var tp in partitions)
                {
                    if (fromFile is not null) { requested.Add((tp, fromFile[tp])); continue; }
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
        if (args.Has("--export"))
        {
            // CsvUtils' records: topic,partition,offset for one --group, group,topic,partition,offset otherwise
            bool single = args.All("--group").Count == 1;
            var csv = new StringBuilder();
            foreach (var (g, offsets) in plans)
                foreach (var ((t, p), o) in offsets)
                    csv.Append(single ? "" : CsvField(g) + ",").Append(CsvField(t)).Append(',').Append(p.ToString(CultureInfo.InvariantCulture))
                        .Append(',').Append(o.ToString(CultureInfo.InvariantCulture)).Append('\n');
            output.WriteLine(csv.ToString());
            return;
        }
        if (plans.Count == 0) { output.WriteLine(); return; }
        string Line(string a, string b, string c, string d) => $"\n{Pad(a, 30)} {Pad(b, 30)} {Pad(c, 10)} {Pad(d, 15)}";
        var sb = new StringBuilder(Line("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"));
        foreach (var (g, offsets) in plans)
            foreach (var ((t, p), o) in offsets)
                sb.Append(Line(g, t, p.ToString(CultureInfo.InvariantCulture), o.ToString(CultureInfo.InvariantCulture)));
        output.WriteLine(sb.ToString());
    }

    /// <summary>Jackson's CSV quoting as CsvUtils writes a field: quoted when it holds a comma, quote or line break.</summary>
    private static string CsvField(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 || s.Length == 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    /// <summary>--from-file: upstream's parseResetPlan — topic,partition,offset lines for one --group,
    /// else group,topic,partition,offset.</summary>
    private static Dictionary<string, Dictionary<(string, int), long>> ReadResetPlan(AdminArgs args)
    {
        string path = args.Get("--from-file")!;
        if (!File.Exists(path)) throw new AdminException($"java.nio.file.NoSuchFileException: {path}");
        var lines = File.ReadAllText(path).Split('\n').Where(l => l.Trim().Length > 0).Select(SplitCsv).ToList();
        bool withGroup = !(args.All("--group").Count == 1 && lines.Count > 0 && lines[0].Count == 3);
        var plan = new Dictionary<string, Dictionary<(string, int), long>>(StringComparer.Ordinal);
        foreach (var cells in lines)
        {
            if (cells.Count != (withGroup ? 4 : 3)
                || !int.TryParse(cells[^2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int partition)
                || !long.TryParse(cells[^1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long offset))
                throw new AdminException($"com.fasterxml.jackson.databind.RuntimeJsonMappingException: cannot read reset plan line: {string.Join(",", cells)}");
            string group = withGroup ? cells[0] : args.Get("--group")!;
            if (!plan.TryGetValue(group, out var forGroup)) plan[group] = forGroup = new();
            forGroup[(cells[^3], partition)] = offset;
        }
        return plan;
    }

    private static List<string> SplitCsv(string line)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { cell.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else cell.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { cells.Add(cell.ToString()); cell.Clear(); }
            else if (c != '\r') cell.Append(c);
        }
        cells.Add(cell.ToString());
        return cells;
    }

    /// <summary>Utils.getDateTime: yyyy-MM-dd'T'HH:mm:ss.SSS with an optional zone (Z, ±hh, ±hhmm, ±hh:mm); none is UTC.</summary>
    internal static long ParseDateTime(string text)
    {
        int t = text.IndexOf('T');
        if (t < 0) throw new AdminException("Error parsing timestamp. It does not contain a 'T' according to ISO8601 format");
        string time = text[(t + 1)..];
        if (!(time.Contains('+') || time.Contains('-') || time.Contains('Z'))) text += "Z";
        string[] formats = ["yyyy-MM-dd'T'HH:mm:ss.fffK", "yyyy-MM-dd'T'HH:mm:ss.fffzz", "yyyy-MM-dd'T'HH:mm:ss.fffzzz"];
        string normalized = System.Text.RegularExpressions.Regex.Replace(text, @"([+-]\d\d)(\d\d)$", "$1:$2");
        if (DateTimeOffset.TryParseExact(normalized, formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
            return when.ToUnixTimeMilliseconds();
        throw new AdminException($"java.text.ParseException: Unparseable date: \"{text}\"");
    }

    /// <summary>java.time.Duration.parse: PnDTnHnMn.nS, with an optional sign.</summary>
    internal static TimeSpan ParseDuration(string text)
    {
        var m = System.Text.RegularExpressions.Regex.Match(text,
            @"^([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?$", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        if (!m.Success || text.EndsWith('T') || text.Equals("P", StringComparison.OrdinalIgnoreCase) || text.EndsWith("PT", StringComparison.OrdinalIgnoreCase))
            throw new AdminException($"Text cannot be parsed to a Duration");
        long Part(int g) => m.Groups[g].Success ? long.Parse(m.Groups[g].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        var d = TimeSpan.FromDays(Part(2)) + TimeSpan.FromHours(Part(3)) + TimeSpan.FromMinutes(Part(4)) + TimeSpan.FromSeconds(Part(5));
        if (m.Groups[6].Success && m.Groups[6].Value.Length > 0)
            d += TimeSpan.FromTicks(long.Parse(m.Groups[6].Value.PadRight(7, '0')[..7], CultureInfo.InvariantCulture) * (Part(5) < 0 || m.Groups[5].Value.StartsWith('-') ? -1 : 1));
        return m.Groups[1].Value == "-" ? -d : d;
    }

    /// <summary>--delete-offsets (OffsetDelete at the coordinator): the topics' partitions, or those named
    /// T:P,P; upstream's result line or error, then a TOPIC/PARTITION/STATUS table.</summary>
    private static async Task<int> DeleteOffsetsAsync(AdminClient admin, AdminArgs args, TextWriter output)
    {
        string id = args.Get("--group")!;
        var topics = args.All("--topic");
        var partitions = new SortedSet<(string Topic, int Partition)>();
        var failed = new Dictionary<(string Topic, int Partition), string>();
        var whole = new List<string>();
        foreach (var spec in topics)
        {
            int colon = spec.IndexOf(':');
            if (colon < 0) { whole.Add(spec); continue; }
            foreach (var p in spec[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                partitions.Add((spec[..colon], int.Parse(p, CultureInfo.InvariantCulture)));
        }
        if (whole.Count > 0)
            foreach (var t in (await admin.MetadataAsync(whole.Distinct().ToList())).Topics)
            {
                if (t.ErrorCode != 0) { failed[(t.Name!, -1)] = ErrorCodes.DefaultMessage(ErrorCodes.FromWire(t.ErrorCode)); continue; }
                foreach (var p in t.Partitions) partitions.Add((t.Name!, p.PartitionIndex));
            }
        var request = new OffsetDeleteRequest
        {
            GroupId = id,
            Topics = partitions.GroupBy(p => p.Topic).Select(t => new OffsetDeleteRequest.OffsetDeleteRequestTopic
            {
                Name = t.Key,
                Partitions = t.Select(p => new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = p.Partition }).ToList(),
            }).ToList(),
        };
        var r = await admin.AtCoordinatorAsync(id, c => admin.SendAsync<OffsetDeleteResponse>(c, request, ApiKey.OffsetDelete, 0), r => [r.ErrorCode]);
        var top = ErrorCodes.FromWire(r.ErrorCode);
        var status = new Dictionary<(string Topic, int Partition), string>(failed);
        foreach (var t in r.Topics)
            foreach (var p in t.Partitions)
                status[(t.Name, p.PartitionIndex)] = p.ErrorCode == 0 ? "Successful" : "Error: :" + ErrorCodes.DefaultMessage(ErrorCodes.FromWire(p.ErrorCode));
        // the admin client fails the whole request on the first partition error it finds
        if (top == ErrorCode.None && r.Topics.SelectMany(t => t.Partitions).FirstOrDefault(p => p.ErrorCode != 0) is { } bad) top = ErrorCodes.FromWire(bad.ErrorCode);
        if (top == ErrorCode.None && failed.Count > 0) top = ErrorCode.UnknownTopicOrPartition;
        if (r.ErrorCode != 0)
            foreach (var tp in partitions) status[tp] = "Error: :" + ErrorCodes.DefaultMessage(top);
        output.WriteLine(top switch
        {
            ErrorCode.None => $"Request succeed for deleting offsets with topic {string.Join(", ", topics)} group {id}",
            ErrorCode.InvalidGroupId => $"\nError: '{id}' is not valid.",
            ErrorCode.GroupIdNotFound => $"\nError: '{id}' does not exist.",
            ErrorCode.GroupAuthorizationFailed => $"\nError: Access to '{id}' is not authorized.",
            ErrorCode.NonEmptyGroup => $"\nError: Deleting offsets of a consumer group '{id}' is forbidden if the group is not empty.",
            ErrorCode.GroupSubscribedToTopic or ErrorCode.TopicAuthorizationFailed or ErrorCode.UnknownTopicOrPartition
                => "\nError: Encounter some partition level error, see the follow-up details:",
            _ => $"\nError: Encounter some unknown error: {ErrorCodes.WireName(top)}",
        });
        var sb = new StringBuilder();
        string Row(string a, string b, string c) => $"\n{Pad(a, 30)} {Pad(b, 15)} {Pad(c, 15)}";
        sb.Append(Row("TOPIC", "PARTITION", "STATUS"));
        foreach (var ((t, p), st) in status.OrderBy(e => e.Key.Topic + e.Key.Partition.ToString(CultureInfo.InvariantCulture), StringComparer.Ordinal))
            sb.Append(Row(t, p >= 0 ? p.ToString(CultureInfo.InvariantCulture) : "Not Provided", st));
        output.WriteLine(sb.ToString());
        return top == ErrorCode.None ? 0 : 1;
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
