using System.Diagnostics;
using System.Globalization;
using System.Net;
using Prometheus;
using Samsa.Net;

namespace Samsa.Keeper.Server;

/// <summary>
/// One of upstream's summaries (AvgMinMaxCounter / AvgMinMaxPercentileCounter): count, sum, min,
/// max, and for the "advanced" ones percentiles over the last 1024 values (upstream samples a
/// reservoir of about that size). mntr prints avg_, min_, max_, cnt_, sum_ (and p50_, p95_, p99_,
/// p999_); /metrics exports the series of a Prometheus summary of the same name (quantiles, _sum, _count), as upstream's
/// PrometheusMetricsProvider does.
/// </summary>
public sealed class KeeperSummary
{
    private readonly object _gate = new();
    private readonly long[] _window;
    private long _count, _sum, _min = long.MaxValue, _max;
    private int _next;
    private WindowedHistogram? _prometheus;

    public KeeperSummary(string name, bool advanced)
    {
        Name = name;
        Advanced = advanced;
        _window = new long[advanced ? 1024 : 0];
    }

    public string Name { get; }
    public bool Advanced { get; }

    internal void Export(WindowedHistogram histogram) => _prometheus = histogram;

    public void Add(long value)
    {
        lock (_gate)
        {
            _count++;
            _sum += value;
            if (value < _min) _min = value;
            if (value > _max) _max = value;
            if (_window.Length > 0) _window[_next++ % _window.Length] = value;
        }
        _prometheus?.Record(value);
    }

    public void Reset()
    {
        lock (_gate) { _count = _sum = _max = 0; _min = long.MaxValue; _next = 0; }
    }

    /// <summary>The mntr lines' keys and values, in upstream's order.</summary>
    public IEnumerable<(string Key, string Value)> Values()
    {
        long count, sum, min, max;
        long[] window;
        lock (_gate)
        {
            (count, sum, min, max) = (_count, _sum, _min, _max);
            window = _window.Take((int)Math.Min(_next, _window.Length)).ToArray();
        }
        double avg = count == 0 ? 0 : (double)sum / count;
        yield return ("avg_" + Name, avg.ToString("0.0###", CultureInfo.InvariantCulture));
        yield return ("min_" + Name, (count == 0 ? 0 : min).ToString(CultureInfo.InvariantCulture));
        yield return ("max_" + Name, max.ToString(CultureInfo.InvariantCulture));
        yield return ("cnt_" + Name, count.ToString(CultureInfo.InvariantCulture));
        yield return ("sum_" + Name, sum.ToString(CultureInfo.InvariantCulture));
        if (!Advanced) yield break;
        Array.Sort(window);
        foreach (var (label, q) in new[] { ("p50_", 0.5), ("p95_", 0.95), ("p99_", 0.99), ("p999_", 0.999) })
            yield return (label + Name, (window.Length == 0 ? 0 : window[Math.Min(window.Length - 1, (int)Math.Ceiling(q * window.Length) - 1)]).ToString(CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// The Keeper's metrics (issue #20): the summaries Samsa measures (fsynctime, readlatency,
/// updatelatency, snapshottime), every key upstream 3.8's mntr prints (<see cref="UpstreamMntrKeys"/>;
/// those Samsa does not measure print 0, see compat/FINDINGS.md), and the Prometheus endpoint of
/// upstream's PrometheusMetricsProvider (metricsProvider.className, httpHost, httpPort): the
/// summaries as Prometheus summary series (quantile gauges, _sum and _count counters), every numeric mntr value Samsa measures as a gauge of the
/// same name without "zk_".
/// </summary>
public sealed class KeeperMetrics
{
    public KeeperSummary FsyncTime { get; } = new("fsynctime", advanced: false);
    public KeeperSummary SnapshotTime { get; } = new("snapshottime", advanced: false);
    public KeeperSummary ReadLatency { get; } = new("readlatency", advanced: true);
    public KeeperSummary UpdateLatency { get; } = new("updatelatency", advanced: true);

    public IEnumerable<KeeperSummary> Summaries => [FsyncTime, SnapshotTime, ReadLatency, UpdateLatency];

    /// <summary>A reply sent (KeeperServer.Reply): upstream's ServerMetrics READ_LATENCY for reads and
    /// UPDATE_LATENCY for txns (writes and closeSession), by the reply's last-op code.</summary>
    public void Replied(string lastOp, long latencyMs)
    {
        switch (lastOp)
        {
            case "GETD" or "GETC" or "GETA" or "EXIS" or "GETE" or "GETACN" or "MLTR":
                ReadLatency.Add(latencyMs);
                break;
            case "CREA" or "DELE" or "SETD" or "SETA" or "CHEC" or "MULT" or "RECO" or "CLOS":
                UpdateLatency.Add(latencyMs);
                break;
        }
    }

    /// <summary>srst (stat_reset) also clears these, as upstream's resetAllValues.</summary>
    public void Reset()
    {
        foreach (var s in Summaries) s.Reset();
    }

    /// <summary>The mntr lines after the server's own: every upstream key not printed yet, in
    /// upstream's order; a summary Samsa measures with its values, anything else 0.</summary>
    internal void AppendMntr(System.Text.StringBuilder sb, HashSet<string> printed)
    {
        var measured = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in Summaries)
            foreach (var (k, v) in s.Values()) measured[k] = v;
        measured["max_file_descriptor_count"] = MaxFileDescriptors().ToString(CultureInfo.InvariantCulture);
        // Samsa never drops connections at random (upstream's connection throttling is off by default too)
        measured["connection_drop_probability"] = "0.0";
        _ownKeys = new HashSet<string>(printed, StringComparer.Ordinal);
        foreach (var key in UpstreamMntrKeys)
        {
            if (!printed.Add(key)) continue;
            sb.Append("zk_").Append(key).Append('\t').Append(measured.GetValueOrDefault(key, "0")).Append('\n');
        }
    }

    private volatile HashSet<string> _ownKeys = [];

    /// <summary>The mntr keys whose values Samsa measures (exported on /metrics): those the server
    /// prints itself, the measured summaries and the descriptor limit; the others print 0.</summary>
    internal static bool IsMeasured(string key, KeeperMetrics m) =>
        m._ownKeys.Contains(key) || key is "max_file_descriptor_count" || m.Summaries.Any(s => key.EndsWith("_" + s.Name, StringComparison.Ordinal));

    private static long MaxFileDescriptors()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                    return long.TryParse(line.Substring(26).Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], out long n) ? n : 0;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    /// <summary>Starts the Prometheus endpoint when zoo.cfg names upstream's PrometheusMetricsProvider;
    /// null otherwise.</summary>
    public static async Task<HttpGetListener?> ServeAsync(KeeperServer server)
    {
        var cfg = server.Config;
        if (!cfg.PrometheusMetricsEnabled) return null;
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        var m = server.Metrics;
        foreach (var s in m.Summaries)
        {
            // upstream: basic summaries with the median, advanced with 0.5, 0.9 and 0.99, over the
            // Prometheus client's default ten minutes (five age buckets): here 5 slots of 2 minutes,
            // recorded lock-free per request (Samsa.Net.WindowedHistogram) and printed at scrape time
            double[] quantiles = s.Advanced ? [0.5, 0.9, 0.99] : [0.5];
            s.Export(new WindowedSummary(registry, s.Name, s.Name, 1, quantiles, slots: 5, slotSeconds: 120).Unlabelled);
        }
        var gauges = new Dictionary<string, Gauge>(StringComparer.Ordinal);
        if (cfg.MetricsExportJvmInfo) Prometheus.DotNetStats.Register(registry);
        // a gauge created during a scrape shows from the next one: the keys known now are created first
        await UpdateAsync(CancellationToken.None).ConfigureAwait(false);
        registry.AddBeforeCollectCallback(UpdateAsync);
        async Task UpdateAsync(CancellationToken ct)
        {
            string mntr;
            try { mntr = await FourLetterWords.RunAsync(server, "mntr", null).WaitAsync(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false); }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException or ObjectDisposedException) { return; }
            lock (gauges)
            foreach (var line in mntr.Split('\n'))
            {
                var kv = line.Split('\t');
                if (kv.Length != 2 || !kv[0].StartsWith("zk_", StringComparison.Ordinal)) continue;
                string key = kv[0].Substring(3);
                if (!IsMeasured(key, m) || m.Summaries.Any(s => key.EndsWith("_" + s.Name, StringComparison.Ordinal))) continue;
                if (!double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double value)) continue;
                if (!gauges.TryGetValue(key, out var g)) gauges[key] = g = factory.CreateGauge(key, key);
                g.Set(value);
            }
        }
        var listener = new HttpGetListener("keeper metrics", new IPEndPoint(HttpGetListener.Resolve(cfg.MetricsHttpHost), cfg.MetricsHttpPort), PrometheusText.Handler(registry));
        listener.Start();
        return listener;
    }

    private static HashSet<string>? _upstreamKeySet;
    private static HashSet<string> UpstreamKeySet => _upstreamKeySet ??= new(UpstreamMntrKeys, StringComparer.Ordinal);

    /// <summary>Upstream 3.8.0's plain mntr values, in its order.</summary>
    private static readonly string[] UpstreamValueKeys =
    [
        "version", "server_state", "ephemerals_count", "num_alive_connections", "avg_latency", "outstanding_requests",
        "znode_count", "global_sessions", "non_mtls_remote_conn_count", "last_client_response_size", "packets_sent",
        "packets_received", "max_client_response_size", "connection_drop_probability", "watch_count",
        "auth_failed_count", "min_latency", "max_file_descriptor_count", "approximate_data_size",
        "open_file_descriptor_count", "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake",
        "min_client_response_size", "non_mtls_local_conn_count", "proposal_count", "watch_bytes",
        "outstanding_changes_removed", "throttled_ops", "stale_requests_dropped", "large_requests_rejected",
        "insecure_admin_count", "connection_rejected", "cnxn_closed_without_zk_server_running",
        "sessionless_connections_expired", "looking_count", "dead_watchers_queued", "stale_requests",
        "connection_drop_count", "learner_proposal_received_count", "digest_mismatches_count", "dead_watchers_cleared",
        "response_packet_cache_hits", "bytes_received_count", "add_dead_watcher_stall_time",
        "request_throttle_wait_count", "requests_not_forwarded_to_commit_processor", "response_packet_cache_misses",
        "ensemble_auth_success", "prep_processor_request_queued", "learner_commit_received_count", "stale_replies",
        "connection_request_count", "response_bytes", "ensemble_auth_fail", "diff_count",
        "response_packet_get_children_cache_misses", "connection_revalidate_count",
        "quit_leading_due_to_disloyal_voter", "snap_count", "unrecoverable_error_count", "unsuccessful_handshake",
        "commit_count", "stale_sessions_expired", "response_packet_get_children_cache_hits",
        "sync_processor_request_queued", "outstanding_changes_queued", "request_commit_queued", "ensemble_auth_skip",
        "skip_learner_request_to_next_processor_count", "tls_handshake_exceeded", "revalidate_count"
    ];

    /// <summary>Upstream 3.8.0's summaries printed as avg_/min_/max_/cnt_/sum_, in its order.</summary>
    private static readonly string[] UpstreamSummaryNames =
    [
        "socket_closing_time", "proposal_process_time", "leader_unavailable_time", "node_created_watch_count",
        "session_queues_drained", "write_commit_proc_req_queued", "connection_token_deficit",
        "read_commit_proc_req_queued", "node_deleted_watch_count", "startup_txns_load_time",
        "sync_processor_queue_size", "follower_sync_time", "prep_processor_queue_size", "fsynctime",
        "inflight_snap_count", "reads_issued_from_session_queue", "learner_request_processor_queue_size",
        "snapshottime", "unavailable_time", "startup_txns_loaded", "reads_after_write_in_session_queue",
        "requests_in_session_queue", "write_commit_proc_issued", "prep_process_time", "pending_session_queue_size",
        "time_waiting_empty_pool_in_commit_processor_read_ms", "commit_process_time", "dbinittime",
        "inflight_diff_count", "netty_queued_buffer_capacity", "election_time", "commit_commit_proc_req_queued",
        "sync_processor_batch_size", "node_children_watch_count", "write_batch_time_in_commit_processor",
        "read_commit_proc_issued", "concurrent_request_processing_in_commit_processor", "observer_sync_time",
        "node_changed_watch_count", "sync_process_time", "startup_snap_load_time"
    ];

    /// <summary>Upstream 3.8.0's summaries that also print p50_/p95_/p99_/p999_, in its order.</summary>
    private static readonly string[] UpstreamPercentileSummaryNames =
    [
        "prep_processor_queue_time_ms", "jvm_pause_time_ms", "close_session_prep_time", "read_commitproc_time_ms",
        "updatelatency", "local_write_committed_time_ms", "request_throttle_queue_time_ms", "readlatency",
        "quorum_ack_latency", "om_commit_process_time_ms", "read_final_proc_time_ms", "commit_propagation_latency",
        "dead_watchers_cleaner_latency", "write_final_proc_time_ms", "proposal_ack_creation_latency",
        "proposal_latency", "om_proposal_process_time_ms", "sync_processor_queue_and_flush_time_ms",
        "propagation_latency", "server_write_committed_time_ms", "sync_processor_queue_time_ms",
        "sync_processor_queue_flush_time_ms", "write_commitproc_time_ms"
    ];

    /// <summary>Every key Apache ZooKeeper 3.8.0's mntr prints on a standalone server (without
    /// "zk_"), in its order, as read from a live server: the plain values, then each summary's
    /// derived keys (the names <see cref="KeeperSummary.Values"/> prints).</summary>
    public static readonly string[] UpstreamMntrKeys =
    [
        .. UpstreamValueKeys,
        .. UpstreamSummaryNames.SelectMany(n => new[] { "avg_", "min_", "max_", "cnt_", "sum_" }.Select(p => p + n)),
        .. UpstreamPercentileSummaryNames.SelectMany(n =>
            new[] { "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_" }.Select(p => p + n)),
    ];
}
