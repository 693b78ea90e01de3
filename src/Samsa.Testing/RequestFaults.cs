using Samsa.Kafka.Broker.Network;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Testing;

/// <summary>
/// One broker's request-level faults (the broker's <see cref="IRequestInterceptor"/> seam): the
/// next N requests of an API answered with an error code instead of being handled, or held for a
/// while before they are handled, and a pause that holds every request until resumed.
/// Requests from other brokers (client ids "broker-&lt;id&gt;-...", e.g. replica fetchers) are not
/// counted unless a rule says so, so FailNextRequests(Fetch, ...) hits consumers, not replication.
/// One rule may be shared by several brokers (one counter for the whole cluster).
/// </summary>
internal sealed class RequestFaults : IRequestInterceptor
{
    internal sealed class Rule
    {
        public required ApiKey Api;
        public int Remaining;
        public ErrorCode? Error;
        public TimeSpan Delay;
        public bool IncludeBrokers;
        public int InFlight;
        public readonly TaskCompletionSource Used = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly List<Rule> _rules = [];
    private volatile TaskCompletionSource _resume = Open();

    private static TaskCompletionSource Open()
    {
        var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.SetResult();
        return t;
    }

    public static Rule NewRule(ApiKey api, int count, ErrorCode? error, TimeSpan delay, bool includeBrokers)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (error is { } e) InjectedResponses.EnsureSupported(api, e);
        else ArgumentOutOfRangeException.ThrowIfNegativeOrZero(delay.Ticks, nameof(delay));
        return new Rule { Api = api, Remaining = count, Error = error, Delay = delay, IncludeBrokers = includeBrokers };
    }

    public void Pause()
    {
        lock (_rules) if (_resume.Task.IsCompleted) _resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Resume() => _resume.TrySetResult();

    public void Add(Rule rule)
    {
        lock (_rules) _rules.Add(rule);
    }

    public void Clear()
    {
        lock (_rules)
        {
            foreach (var r in _rules) r.Used.TrySetResult();
            _rules.Clear();
        }
    }

    public async ValueTask<IKafkaMessage?> InterceptAsync(RequestHeader header, IKafkaMessage request, Func<ValueTask<IKafkaMessage?>> handle, CancellationToken cancellation)
    {
        // A paused broker takes requests off the wire but answers none until resumed, as a
        // process under SIGSTOP leaves them in its socket buffers.
        if (!_resume.Task.IsCompleted) await _resume.Task.WaitAsync(cancellation);
        Rule? hit = null;
        bool fromBroker = header.ClientId?.StartsWith("broker-", StringComparison.Ordinal) == true;
        lock (_rules)
        {
            _rules.RemoveAll(r => Volatile.Read(ref r.Remaining) <= 0);
            foreach (var r in _rules)
            {
                if ((short)r.Api != header.RequestApiKey || (fromBroker && !r.IncludeBrokers)) continue;
                // Requests that have nowhere to carry an error (Produce acks=0, Metadata for all
                // topics, a Fetch naming no partition) are left alone and not counted.
                if (r.Error is not null && !InjectedResponses.CanCarry(request)) continue;
                // Shared rules are in several brokers' lists: the counter decides who takes the last one.
                lock (r)
                {
                    if (r.Remaining <= 0) continue;
                    r.Remaining--;
                    r.InFlight++;
                }
                hit = r;
                break;
            }
        }
        if (hit is null) return await handle();
        try
        {
            if (hit.Delay > TimeSpan.Zero) await Task.Delay(hit.Delay, cancellation);
            if (hit.Error is not { } error) return await handle();
            // Metadata: the broker's own answer with every requested topic in error, so the broker
            // list stays (librdkafka drops known brokers a Metadata answer leaves out).
            if (request is MetadataRequest) return InjectedResponses.IntoMetadata(await handle(), error);
            return InjectedResponses.For(request, header.RequestApiVersion, error);
        }
        finally
        {
            lock (hit)
            {
                hit.InFlight--;
                if (hit.Remaining == 0 && hit.InFlight == 0) hit.Used.TrySetResult();
            }
        }
    }
}
