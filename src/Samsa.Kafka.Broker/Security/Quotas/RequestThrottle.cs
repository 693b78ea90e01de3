using System.Diagnostics;
using Samsa.Kafka.Broker.Handlers;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Security.Quotas;

/// <summary>
/// Quota enforcement around one request, as upstream's KafkaApis + RequestHandlerHelper (KIP-13,
/// KIP-124, KIP-219, KIP-599), called by the connection handler:
/// <list type="bullet">
/// <item>Before the handler: a consumer Fetch's max_bytes is capped to what the fetch quota allows
/// in one quota window (getMaxValueInQuotaWindow); CreateTopics / CreatePartitions / DeleteTopics
/// take controller mutation permits (one per partition) — from CreateTopics v6, CreatePartitions v3
/// and DeleteTopics v5 strictly (a topic arriving while the token bucket is below zero is refused
/// with THROTTLING_QUOTA_EXCEEDED), before that permissively (recorded, only throttled).</item>
/// <item>After it: Produce records the request size against producer_byte_rate; a consumer Fetch
/// records the response size against consumer_byte_rate and, when throttled, takes it back and
/// answers an empty response instead (upstream getThrottledResponse); every request not exempt
/// (inter-broker requests, follower fetches, acks=0 produce for the request quota) records its
/// handler time against request_percentage. The throttle is the larger of the two.</item>
/// <item>The response carries throttle_time_ms (every response type with the field, set through
/// the generated property) and goes out at once; then the connection reads no further request
/// until the throttle time has passed (upstream mutes the channel — for every version; clients from
/// KIP-219's versions on also back off by themselves).</item>
/// </list>
/// </summary>
public static class RequestThrottle
{
    /// <summary>Requests a client cannot be throttled for (upstream's cluster actions, sent by
    /// brokers); follower fetches are found by their replica id.</summary>
    private static bool Exempt(ApiKey key) => key is ApiKey.ControlledShutdown or ApiKey.WriteTxnMarkers;

    /// <summary>Runs before the handler. Returns the topics refused by the strict controller
    /// mutation quota (to be answered by <see cref="After"/>) and their throttle time.</summary>
    public static Pending Before(RequestContext context, IKafkaMessage request)
    {
        var quotas = context.Broker.Quotas;
        var session = context.Session;
        string? clientId = context.Header.ClientId;
        short v = context.ApiVersion;
        switch (request)
        {
            case FetchRequest fetch when ReplicaIdOf(fetch, v) < 0 && quotas.Fetch.Enabled:
            {
                double cap = quotas.Fetch.MaxValueInQuotaWindow(session.Principal, clientId);
                if (cap < int.MaxValue && v >= 3)
                {
                    fetch.MaxBytes = Math.Min(fetch.MaxBytes, (int)cap);
                    fetch.MinBytes = Math.Min(fetch.MinBytes, fetch.MaxBytes);
                }
                break;
            }
            case CreateTopicsRequest create when !create.ValidateOnly && quotas.ControllerMutation.Enabled:
                return Mutate(context, v >= 6, create.Topics, t => t.Name,
                    t => t.NumPartitions >= 0 ? t.NumPartitions : t.Assignments.Count > 0 ? t.Assignments.Count : context.Broker.Config.NumPartitions,
                    kept => create.Topics = kept);
            case CreatePartitionsRequest parts when !parts.ValidateOnly && quotas.ControllerMutation.Enabled:
                return Mutate(context, v >= 3, parts.Topics, t => t.Name,
                    t => Math.Max(0, t.Count - PartitionCount(context.Broker, t.Name)), kept => parts.Topics = kept);
            case DeleteTopicsRequest delete when quotas.ControllerMutation.Enabled:
                if (v >= 6)
                    return Mutate(context, true, delete.Topics, t => t.Name ?? "", t => PartitionCount(context.Broker, t.Name ?? ""), kept => delete.Topics = kept);
                return Mutate(context, v >= 5, delete.TopicNames, t => t, t => PartitionCount(context.Broker, t), kept => delete.TopicNames = kept);
        }
        return default;
    }

    public readonly record struct Pending(List<string>? Refused, int MutationThrottleMs);

    private static int ReplicaIdOf(FetchRequest fetch, short v) => v >= 15 ? fetch.ReplicaState.ReplicaId : fetch.ReplicaId;

    private static int PartitionCount(KafkaBroker broker, string topic) =>
        broker.Cluster?.View.Topics.GetValueOrDefault(topic)?.Assignment.Count ?? broker.Replicas.GetTopic(topic)?.Partitions.Count ?? 0;

    private static Pending Mutate<T>(RequestContext context, bool strict, List<T> topics, Func<T, string> name, Func<T, int> permits, Action<List<T>> setKept)
    {
        var quota = context.Broker.Quotas.ControllerMutation;
        var principal = context.Session.Principal;
        string? clientId = context.Header.ClientId;
        List<string>? refused = null;
        var kept = new List<T>(topics.Count);
        int throttle = 0;
        foreach (var t in topics)
        {
            if (strict)
            {
                int ms = quota.TryAcquireStrict(principal, clientId, permits(t));
                if (ms > 0) { (refused ??= []).Add(name(t)); throttle = Math.Max(throttle, ms); continue; }
            }
            else throttle = Math.Max(throttle, quota.RecordPermissive(principal, clientId, permits(t)));
            kept.Add(t);
        }
        if (refused is not null) setKept(kept);
        return new Pending(refused, throttle);
    }

    /// <summary>Runs after the handler: records, answers the throttle time in ms (0 = none), and
    /// may replace the response (a throttled Fetch, topics refused by the mutation quota).</summary>
    public static int After(RequestContext context, IKafkaMessage request, int requestBytes, long handlerTicks, Pending pending, ref IKafkaMessage? response)
    {
        var quotas = context.Broker.Quotas;
        var principal = context.Session.Principal;
        string? clientId = context.Header.ClientId;
        short v = context.ApiVersion;
        var key = (ApiKey)context.Header.RequestApiKey;
        bool follower = request is FetchRequest f && ReplicaIdOf(f, v) >= 0;
        bool acksZero = request is ProduceRequest p && p.Acks == 0;

        int requestThrottle = 0;
        if (!Exempt(key) && !follower && !acksZero && quotas.Request.Enabled)
        {
            // Upstream counts request handler thread time as a percentage of one second.
            double percent = Stopwatch.GetElapsedTime(0, handlerTicks).TotalMilliseconds / 10.0;
            requestThrottle = quotas.Request.RecordAndGetThrottleTimeMs(principal, clientId, percent);
        }
        int bandwidthThrottle = 0;
        if (request is ProduceRequest)
            bandwidthThrottle = quotas.Produce.RecordAndGetThrottleTimeMs(principal, clientId, requestBytes);
        else if (request is FetchRequest && !follower && response is FetchResponse fr && quotas.Fetch.Enabled)
        {
            int size = fr.Size(v);
            bandwidthThrottle = quotas.Fetch.RecordAndGetThrottleTimeMs(principal, clientId, size);
            if (Math.Max(bandwidthThrottle, requestThrottle) > 0)
            {
                quotas.Fetch.Unrecord(principal, clientId, size);
                Network.FetchResponseFrames.Release(fr);
                response = new FetchResponse { SessionId = 0 };
            }
        }
        int throttle = Math.Max(Math.Max(bandwidthThrottle, requestThrottle), pending.MutationThrottleMs);
        if (pending.Refused is { Count: > 0 } refused && response is not null) AddRefused(response, refused, v);
        if (throttle > 0 && response is not null) SetThrottleTime(response, v, throttle);
        return throttle;
    }

    private const string ThrottledMessage = "The throttling quota has been exceeded.";

    private static void AddRefused(IKafkaMessage response, List<string> refused, short v)
    {
        const short code = (short)ErrorCode.ThrottlingQuotaExceeded;
        switch (response)
        {
            case CreateTopicsResponse r:
                foreach (var n in refused) r.Topics.Add(new CreateTopicsResponse.CreatableTopicResult { Name = n, ErrorCode = code, ErrorMessage = ThrottledMessage, NumPartitions = -1, ReplicationFactor = -1 });
                break;
            case CreatePartitionsResponse r:
                foreach (var n in refused) r.Results.Add(new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = n, ErrorCode = code, ErrorMessage = ThrottledMessage });
                break;
            case DeleteTopicsResponse r:
                foreach (var n in refused) r.Responses.Add(new DeleteTopicsResponse.DeletableTopicResult { Name = n, ErrorCode = code, ErrorMessage = v >= 5 ? ThrottledMessage : null });
                break;
        }
    }

    /// <summary>Sets throttle_time_ms on any generated response that has it at this version.</summary>
    public static void SetThrottleTime(IKafkaMessage response, short version, int throttleMs)
    {
        // The generator marks every message with a top-level int32 throttle_time_ms
        // (IThrottleTimeMessage): no reflection, so NativeAOT builds set it too.
        if (response is IThrottleTimeMessage m && m.HasThrottleTime(version)) m.ThrottleTimeMs = throttleMs;
    }

    /// <summary>Upstream mutes the channel until the throttle time has passed since it was decided:
    /// no further request of this connection is read meanwhile.</summary>
    public static async Task MuteAsync(Samsa.Net.Connection connection, int throttleMs, long decidedTicks)
    {
        var left = TimeSpan.FromMilliseconds(throttleMs) - Stopwatch.GetElapsedTime(decidedTicks);
        if (left <= TimeSpan.Zero) return;
        try { await Task.Delay(left, connection.Closed); }
        catch (OperationCanceledException) { }
    }
}
