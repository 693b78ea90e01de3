// ShareFetch (key 78), versions 1-2 (Kafka 4.2; v0 was 4.0's early access and is gone).
//
// Behaviour (KIP-932, upstream KafkaApis.handleShareFetchRequest / SharePartitionManager):
// - share session (Groups/Share/ShareSessionCache): epoch 0 opens one for (group, member) on this
//   broker, replacing the member's previous one and releasing what it held; -1 closes it after
//   the acknowledgements (no records are fetched); otherwise the epoch must be the session's next
//   one (INVALID_SHARE_SESSION_EPOCH) of a known session (SHARE_SESSION_NOT_FOUND). Session errors
//   are top-level. Acknowledgements with epoch 0 are INVALID_REQUEST.
// - the piggy-backed acknowledgements are applied first (per partition AcknowledgeErrorCode:
//   INVALID_RECORD_STATE when a record is not acquired by this member, INVALID_REQUEST for a bad
//   batch), then records are acquired from every partition of the session (the request's
//   partitions added, ForgottenTopicsData removed) that this broker leads: Groups/Share/SharePartition
//   (record locks of group.share.record.lock.duration.ms, delivery counts, max_records with whole
//   batches in batch-optimized mode (0) or an exact cut in record-limit mode (1, v2)).
// - v2 IsRenewAck: the request only carries acknowledgements (with Renew) and acquires nothing.
// - the answer carries, per partition, the record batches that hold acquired records and the
//   AcquiredRecords ranges with their delivery counts; AcquisitionLockTimeoutMs is the lock length.
//   When nothing is acquired it waits up to max_wait_ms for appends or released locks.
// - partitions led elsewhere: NOT_LEADER_OR_FOLLOWER with CurrentLeader and NodeEndpoints;
//   unknown topic ids UNKNOWN_TOPIC_ID.
// share.version 0 (finalized): UNSUPPORTED_VERSION, top-level (upstream isShareGroupProtocolEnabled).
// Authorization (KafkaApis.handleShareFetchRequest): GROUP READ (top-level
// GROUP_AUTHORIZATION_FAILED), TOPIC READ per topic (TOPIC_AUTHORIZATION_FAILED).
// Differs from upstream: min_bytes is treated as "at least one acquired record"; each answer
// lists every partition of the request (upstream's incremental sessions list only partitions
// with news). Share-partition state: read from the share coordinator (ReadShareGroupState) when
// this leader first serves the share-partition — a coordinator that cannot answer makes the
// partition's error COORDINATOR_NOT_AVAILABLE, as upstream's SharePartition initialization —;
// piggybacked acknowledgements are written (WriteShareGroupState) before the answer.
using Samsa.Kafka.Broker.Cluster;
using Samsa.Kafka.Broker.Groups.Share;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Handlers;

public static class ShareFetchHandler
{
    public static async ValueTask<IKafkaMessage?> HandleAsync(RequestContext context, ShareFetchRequest request)
    {
        var broker = context.Broker;
        var shares = broker.Shares;
        int lockMs = shares.Settings.RecordLockDurationMs;
        string groupId = request.GroupId ?? "";
        string memberId = request.MemberId ?? "";
        // Upstream KafkaApis.handleShareFetchRequest checks isShareGroupProtocolEnabled first:
        // finalized share.version 0 (UpdateFeatures) answers UNSUPPORTED_VERSION, top-level, before
        // authorization or the share session are looked at.
        if (broker.Features.Level("share.version") < 1)
            return Top(ErrorCode.UnsupportedVersion, "Share groups are disabled (share.version 0).", lockMs);
        if (!Security.Acl.Authz.Group(context, Security.Acl.AclOperation.Read, groupId))
            return Top(ErrorCode.GroupAuthorizationFailed, "Group authorization failed.", lockMs);
        if (groupId.Length == 0 || memberId.Length == 0)
            return Top(ErrorCode.InvalidRequest, "GroupId and MemberId must be set.", lockMs);
        int epoch = request.ShareSessionEpoch;
        bool hasAcks = request.Topics.Any(t => t.Partitions.Any(p => p.AcknowledgementBatches.Count > 0));
        if (epoch == 0 && hasAcks)
            return Top(ErrorCode.InvalidRequest, "Acknowledge data present on initial share fetch request.", lockMs);
        if (context.ApiVersion < 2 && request.Topics.Any(t => t.Partitions.Any(p => p.AcknowledgementBatches.Any(b => b.AcknowledgeTypes.Contains((sbyte)AcknowledgeType.Renew)))))
            return Top(ErrorCode.InvalidRequest, "Renew acknowledgements need ShareFetch v2.", lockMs);
        var error = shares.Sessions.Begin(groupId, memberId, epoch, isAcknowledge: false, shares.Clock(), out var session, out var replaced);
        if (error != ErrorCode.None) return Top(error, null, lockMs);
        if (replaced is not null) shares.ReleaseMember(groupId, memberId);
        if (epoch == 0 && session is not null)
        {
            // The session belongs to this connection: when it closes, the session goes and what the
            // member holds here is released (upstream ShareSessionCache's connection-disconnect listener).
            var opened = session;
            context.Cancellation.Register(() => shares.CloseSession(opened));
        }

        var response = new ShareFetchResponse { AcquisitionLockTimeoutMs = lockMs };
        var entries = new Dictionary<(Guid, int), ShareFetchResponse.PartitionData>();
        var deniedTopics = Security.Acl.Authz.DeniedTopics(context, Security.Acl.AclOperation.Read,
            request.Topics.Select(t => broker.Replicas.GetTopic(t.TopicId)?.Name));
        string listener = context.Session.ListenerName;

        ShareFetchResponse.PartitionData Entry(Guid topicId, int index)
        {
            if (entries.TryGetValue((topicId, index), out var pd)) return pd;
            pd = new ShareFetchResponse.PartitionData
            {
                PartitionIndex = index,
                CurrentLeader = new ShareFetchResponse.LeaderIdAndEpoch { LeaderId = -1, LeaderEpoch = -1 },
                Records = null,
            };
            entries[(topicId, index)] = pd;
            var tr = response.Responses.Find(r => r.TopicId == topicId);
            if (tr is null) response.Responses.Add(tr = new ShareFetchResponse.ShareFetchableTopicResponse { TopicId = topicId });
            tr.Partitions.Add(pd);
            return pd;
        }

        // Resolves a partition this broker leads, or fills the entry's error.
        Partition? Resolve(Guid topicId, int index, ShareFetchResponse.PartitionData pd, bool forAck)
        {
            var topic = broker.Replicas.GetTopic(topicId);
            ErrorCode e = ErrorCode.None;
            Partition? partition = null;
            if (topic is null) e = ErrorCode.UnknownTopicId;
            else if (deniedTopics.Contains(topic.Name)) e = ErrorCode.TopicAuthorizationFailed;
            else if ((partition = broker.Replicas.GetPartition(topic.Name, index)) is null) e = ErrorCode.UnknownTopicOrPartition;
            else if (!partition.IsLeader) e = ErrorCode.NotLeaderOrFollower;
            if (partition is not null)
            {
                var (leaderId, leaderEpoch) = LeaderHints.CurrentLeader(broker, partition);
                pd.CurrentLeader = new ShareFetchResponse.LeaderIdAndEpoch { LeaderId = leaderId, LeaderEpoch = leaderEpoch };
                if (e == ErrorCode.NotLeaderOrFollower && LeaderHints.AliveNode(broker, leaderId, listener) is { } node
                    && !response.NodeEndpoints.Exists(n => n.NodeId == leaderId))
                    response.NodeEndpoints.Add(new ShareFetchResponse.NodeEndpoint { NodeId = leaderId, Host = node.Host, Port = node.Port, Rack = node.Rack });
            }
            if (e != ErrorCode.None)
            {
                if (forAck) pd.AcknowledgeErrorCode = (short)e;
                else pd.ErrorCode = (short)e;
                return null;
            }
            return partition;
        }

        // 1. Acknowledgements.
        bool acked = false;
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                if (p.AcknowledgementBatches.Count == 0) continue;
                var pd = Entry(t.TopicId, p.PartitionIndex);
                var partition = Resolve(t.TopicId, p.PartitionIndex, pd, forAck: true);
                if (partition is null) continue;
                var ackError = await ShareAcknowledgeHandler.ApplyAsync(shares, groupId, memberId, partition,
                    p.AcknowledgementBatches.Select(b => (b.FirstOffset, b.LastOffset, (IReadOnlyList<sbyte>)b.AcknowledgeTypes)), context.Cancellation);
                pd.AcknowledgeErrorCode = (short)ackError;
                acked = true;
            }
        if (acked) shares.Notify();

        // 2. Session bookkeeping.
        if (epoch == -1)
        {
            shares.ReleaseMember(groupId, memberId);
            return response;
        }
        foreach (var f in request.ForgottenTopicsData)
            foreach (var index in f.Partitions) session!.Partitions.Remove((f.TopicId, index));
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions) session!.Partitions.Add((t.TopicId, p.PartitionIndex));

        // 3. Acquire, waiting up to max_wait_ms when nothing could be acquired. A v2 request with
        // IsRenewAck only renews locks (KIP-1222): it acquires nothing and does not wait.
        if (context.ApiVersion >= 2 && request.IsRenewAck)
        {
            foreach (var pd in entries.Values) pd.Records ??= ReadOnlyMemory<byte>.Empty;
            return response;
        }
        var fetchable = new List<(Guid TopicId, int Index, Partition Partition)>();
        foreach (var (topicId, index) in session!.Partitions.OrderBy(k => k.TopicId).ThenBy(k => k.Partition))
        {
            bool requested = request.Topics.Any(t => t.TopicId == topicId && t.Partitions.Any(p => p.PartitionIndex == index));
            ShareFetchResponse.PartitionData? pd = requested || entries.ContainsKey((topicId, index)) ? Entry(topicId, index) : null;
            var probe = pd ?? new ShareFetchResponse.PartitionData { CurrentLeader = new() };
            var partition = Resolve(topicId, index, probe, forAck: false);
            if (partition is null)
            {
                if (pd is null && probe.ErrorCode != 0) { pd = Entry(topicId, index); pd.ErrorCode = probe.ErrorCode; pd.CurrentLeader = probe.CurrentLeader; }
                continue;
            }
            var loaded = await shares.EnsureLoadedAsync(groupId, partition, context.Cancellation);
            if (loaded != ErrorCode.None)
            {
                pd ??= Entry(topicId, index);
                pd.ErrorCode = (short)ShareService.ClientError(loaded);
                continue;
            }
            fetchable.Add((topicId, index, partition));
        }
        bool recordLimit = context.ApiVersion >= 2 && request.ShareAcquireMode == 1;
        int maxRecords = request.MaxRecords > 0 ? request.MaxRecords : 500;
        int maxBytes = Math.Min(request.MaxBytes <= 0 ? int.MaxValue : request.MaxBytes, broker.Config.FetchMaxBytes);
        long deadline = shares.Clock() + Math.Max(0, request.MaxWaitMs);
        bool anyError = entries.Values.Any(e => e.ErrorCode != 0);
        var failed = new HashSet<(Guid, int)>();
        while (fetchable.Count > 0)
        {
            var changed = shares.Changed;
            int got = 0, bytes = 0;
            foreach (var (topicId, index, partition) in fetchable)
            {
                if (got >= maxRecords || bytes >= maxBytes) break;
                if (failed.Contains((topicId, index))) continue;
                ReadOnlyMemory<byte> records;
                List<AcquiredRange> acquired;
                try
                {
                    (records, acquired) = shares.Acquire(groupId, memberId, partition, maxBytes - bytes, maxRecords - got, recordLimit);
                }
                catch (SharePersisterException e)
                {
                    // Leadership changed while waiting and the state could not be read again.
                    Entry(topicId, index).ErrorCode = (short)ShareService.ClientError(e.Error);
                    failed.Add((topicId, index));
                    anyError = true;
                    continue;
                }
                if (acquired.Count == 0) continue;
                var pd = Entry(topicId, index);
                pd.Records = records;
                pd.AcquiredRecords = acquired.Select(a => new ShareFetchResponse.AcquiredRecords
                {
                    FirstOffset = a.FirstOffset, LastOffset = a.LastOffset, DeliveryCount = a.DeliveryCount,
                }).ToList();
                got += (int)acquired.Sum(a => a.LastOffset - a.FirstOffset + 1);
                bytes += records.Length;
            }
            if (got > 0 || anyError) break;
            long wait = deadline - shares.Clock();
            if (wait <= 0) break;
            try
            {
                await changed.WaitAsync(TimeSpan.FromMilliseconds(wait), context.Cancellation);
            }
            catch (TimeoutException) { break; }
        }
        foreach (var pd in entries.Values) pd.Records ??= ReadOnlyMemory<byte>.Empty;
        return response;
    }

    private static ShareFetchResponse Top(ErrorCode error, string? message, int lockMs) =>
        new() { ErrorCode = (short)error, ErrorMessage = message, AcquisitionLockTimeoutMs = lockMs };
}
