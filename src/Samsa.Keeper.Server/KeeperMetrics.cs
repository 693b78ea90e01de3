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
/// p999_); /metrics exports a Prometheus summary of the same name, as upstream's
/// PrometheusMetricsProvider does.
/// </summary>
public sealed class KeeperSummary
{
    private readonly object _gate = new();
    private readonly long[] _window;
    private long _count, _sum, _min = long.MaxValue, _max;
    private int _next;
    private Summary? _prometheus;

    public KeeperSummary(string name, bool advanced)
    {
        Name = name;
        Advanced = advanced;
        _window = new long[advanced ? 1024 : 0];
    }

    public string Name { get; }
    public bool Advanced { get; }

    internal void Export(Summary child) => _prometheus = child;

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
        _prometheus?.Observe(value);
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
/// summaries as Prometheus summaries, every numeric mntr value Samsa measures as a gauge of the
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
            // upstream: basic summaries with the median, advanced with 0.5, 0.9 and 0.99
            var objectives = s.Advanced
                ? new[] { new QuantileEpsilonPair(0.5, 0.05), new QuantileEpsilonPair(0.9, 0.01), new QuantileEpsilonPair(0.99, 0.001) }
                : new[] { new QuantileEpsilonPair(0.5, 0.05) };
            s.Export(factory.CreateSummary(s.Name, s.Name, [], new SummaryConfiguration { Objectives = objectives }));
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

    /// <summary>Every key Apache ZooKeeper 3.8.0's mntr prints on a standalone server (without
    /// "zk_"), in its order, as read from a live server.</summary>
    public static readonly string[] UpstreamMntrKeys =
    [
        "version", "server_state", "ephemerals_count", "num_alive_connections", "avg_latency", "outstanding_requests",
        "znode_count", "global_sessions", "non_mtls_remote_conn_count", "last_client_response_size", "packets_sent",
        "packets_received", "max_client_response_size", "connection_drop_probability", "watch_count", "auth_failed_count",
        "min_latency", "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count", "local_sessions",
        "uptime", "max_latency", "outstanding_tls_handshake", "min_client_response_size", "non_mtls_local_conn_count",
        "proposal_count", "watch_bytes", "outstanding_changes_removed", "throttled_ops", "stale_requests_dropped",
        "large_requests_rejected", "insecure_admin_count", "connection_rejected", "cnxn_closed_without_zk_server_running",
        "sessionless_connections_expired", "looking_count", "dead_watchers_queued", "stale_requests", "connection_drop_count",
        "learner_proposal_received_count", "digest_mismatches_count", "dead_watchers_cleared", "response_packet_cache_hits",
        "bytes_received_count", "add_dead_watcher_stall_time", "request_throttle_wait_count",
        "requests_not_forwarded_to_commit_processor", "response_packet_cache_misses", "ensemble_auth_success",
        "prep_processor_request_queued", "learner_commit_received_count", "stale_replies", "connection_request_count",
        "response_bytes", "ensemble_auth_fail", "diff_count", "response_packet_get_children_cache_misses",
        "connection_revalidate_count", "quit_leading_due_to_disloyal_voter", "snap_count", "unrecoverable_error_count",
        "unsuccessful_handshake", "commit_count", "stale_sessions_expired", "response_packet_get_children_cache_hits",
        "sync_processor_request_queued", "outstanding_changes_queued", "request_commit_queued", "ensemble_auth_skip",
        "skip_learner_request_to_next_processor_count", "tls_handshake_exceeded", "revalidate_count", "avg_socket_closing_time",
        "min_socket_closing_time", "max_socket_closing_time", "cnt_socket_closing_time", "sum_socket_closing_time",
        "avg_proposal_process_time", "min_proposal_process_time", "max_proposal_process_time", "cnt_proposal_process_time",
        "sum_proposal_process_time", "avg_leader_unavailable_time", "min_leader_unavailable_time", "max_leader_unavailable_time",
        "cnt_leader_unavailable_time", "sum_leader_unavailable_time", "avg_node_created_watch_count",
        "min_node_created_watch_count", "max_node_created_watch_count", "cnt_node_created_watch_count",
        "sum_node_created_watch_count", "avg_session_queues_drained", "min_session_queues_drained", "max_session_queues_drained",
        "cnt_session_queues_drained", "sum_session_queues_drained", "avg_write_commit_proc_req_queued",
        "min_write_commit_proc_req_queued", "max_write_commit_proc_req_queued", "cnt_write_commit_proc_req_queued",
        "sum_write_commit_proc_req_queued", "avg_connection_token_deficit", "min_connection_token_deficit",
        "max_connection_token_deficit", "cnt_connection_token_deficit", "sum_connection_token_deficit",
        "avg_read_commit_proc_req_queued", "min_read_commit_proc_req_queued", "max_read_commit_proc_req_queued",
        "cnt_read_commit_proc_req_queued", "sum_read_commit_proc_req_queued", "avg_node_deleted_watch_count",
        "min_node_deleted_watch_count", "max_node_deleted_watch_count", "cnt_node_deleted_watch_count",
        "sum_node_deleted_watch_count", "avg_startup_txns_load_time", "min_startup_txns_load_time", "max_startup_txns_load_time",
        "cnt_startup_txns_load_time", "sum_startup_txns_load_time", "avg_sync_processor_queue_size",
        "min_sync_processor_queue_size", "max_sync_processor_queue_size", "cnt_sync_processor_queue_size",
        "sum_sync_processor_queue_size", "avg_follower_sync_time", "min_follower_sync_time", "max_follower_sync_time",
        "cnt_follower_sync_time", "sum_follower_sync_time", "avg_prep_processor_queue_size", "min_prep_processor_queue_size",
        "max_prep_processor_queue_size", "cnt_prep_processor_queue_size", "sum_prep_processor_queue_size", "avg_fsynctime",
        "min_fsynctime", "max_fsynctime", "cnt_fsynctime", "sum_fsynctime", "avg_inflight_snap_count", "min_inflight_snap_count",
        "max_inflight_snap_count", "cnt_inflight_snap_count", "sum_inflight_snap_count", "avg_reads_issued_from_session_queue",
        "min_reads_issued_from_session_queue", "max_reads_issued_from_session_queue", "cnt_reads_issued_from_session_queue",
        "sum_reads_issued_from_session_queue", "avg_learner_request_processor_queue_size",
        "min_learner_request_processor_queue_size", "max_learner_request_processor_queue_size",
        "cnt_learner_request_processor_queue_size", "sum_learner_request_processor_queue_size", "avg_snapshottime",
        "min_snapshottime", "max_snapshottime", "cnt_snapshottime", "sum_snapshottime", "avg_unavailable_time",
        "min_unavailable_time", "max_unavailable_time", "cnt_unavailable_time", "sum_unavailable_time", "avg_startup_txns_loaded",
        "min_startup_txns_loaded", "max_startup_txns_loaded", "cnt_startup_txns_loaded", "sum_startup_txns_loaded",
        "avg_reads_after_write_in_session_queue", "min_reads_after_write_in_session_queue",
        "max_reads_after_write_in_session_queue", "cnt_reads_after_write_in_session_queue",
        "sum_reads_after_write_in_session_queue", "avg_requests_in_session_queue", "min_requests_in_session_queue",
        "max_requests_in_session_queue", "cnt_requests_in_session_queue", "sum_requests_in_session_queue",
        "avg_write_commit_proc_issued", "min_write_commit_proc_issued", "max_write_commit_proc_issued",
        "cnt_write_commit_proc_issued", "sum_write_commit_proc_issued", "avg_prep_process_time", "min_prep_process_time",
        "max_prep_process_time", "cnt_prep_process_time", "sum_prep_process_time", "avg_pending_session_queue_size",
        "min_pending_session_queue_size", "max_pending_session_queue_size", "cnt_pending_session_queue_size",
        "sum_pending_session_queue_size", "avg_time_waiting_empty_pool_in_commit_processor_read_ms",
        "min_time_waiting_empty_pool_in_commit_processor_read_ms", "max_time_waiting_empty_pool_in_commit_processor_read_ms",
        "cnt_time_waiting_empty_pool_in_commit_processor_read_ms", "sum_time_waiting_empty_pool_in_commit_processor_read_ms",
        "avg_commit_process_time", "min_commit_process_time", "max_commit_process_time", "cnt_commit_process_time",
        "sum_commit_process_time", "avg_dbinittime", "min_dbinittime", "max_dbinittime", "cnt_dbinittime", "sum_dbinittime",
        "avg_inflight_diff_count", "min_inflight_diff_count", "max_inflight_diff_count", "cnt_inflight_diff_count",
        "sum_inflight_diff_count", "avg_netty_queued_buffer_capacity", "min_netty_queued_buffer_capacity",
        "max_netty_queued_buffer_capacity", "cnt_netty_queued_buffer_capacity", "sum_netty_queued_buffer_capacity",
        "avg_election_time", "min_election_time", "max_election_time", "cnt_election_time", "sum_election_time",
        "avg_commit_commit_proc_req_queued", "min_commit_commit_proc_req_queued", "max_commit_commit_proc_req_queued",
        "cnt_commit_commit_proc_req_queued", "sum_commit_commit_proc_req_queued", "avg_sync_processor_batch_size",
        "min_sync_processor_batch_size", "max_sync_processor_batch_size", "cnt_sync_processor_batch_size",
        "sum_sync_processor_batch_size", "avg_node_children_watch_count", "min_node_children_watch_count",
        "max_node_children_watch_count", "cnt_node_children_watch_count", "sum_node_children_watch_count",
        "avg_write_batch_time_in_commit_processor", "min_write_batch_time_in_commit_processor",
        "max_write_batch_time_in_commit_processor", "cnt_write_batch_time_in_commit_processor",
        "sum_write_batch_time_in_commit_processor", "avg_read_commit_proc_issued", "min_read_commit_proc_issued",
        "max_read_commit_proc_issued", "cnt_read_commit_proc_issued", "sum_read_commit_proc_issued",
        "avg_concurrent_request_processing_in_commit_processor", "min_concurrent_request_processing_in_commit_processor",
        "max_concurrent_request_processing_in_commit_processor", "cnt_concurrent_request_processing_in_commit_processor",
        "sum_concurrent_request_processing_in_commit_processor", "avg_observer_sync_time", "min_observer_sync_time",
        "max_observer_sync_time", "cnt_observer_sync_time", "sum_observer_sync_time", "avg_node_changed_watch_count",
        "min_node_changed_watch_count", "max_node_changed_watch_count", "cnt_node_changed_watch_count",
        "sum_node_changed_watch_count", "avg_sync_process_time", "min_sync_process_time", "max_sync_process_time",
        "cnt_sync_process_time", "sum_sync_process_time", "avg_startup_snap_load_time", "min_startup_snap_load_time",
        "max_startup_snap_load_time", "cnt_startup_snap_load_time", "sum_startup_snap_load_time",
        "avg_prep_processor_queue_time_ms", "min_prep_processor_queue_time_ms", "max_prep_processor_queue_time_ms",
        "cnt_prep_processor_queue_time_ms", "sum_prep_processor_queue_time_ms", "p50_prep_processor_queue_time_ms",
        "p95_prep_processor_queue_time_ms", "p99_prep_processor_queue_time_ms", "p999_prep_processor_queue_time_ms",
        "avg_jvm_pause_time_ms", "min_jvm_pause_time_ms", "max_jvm_pause_time_ms", "cnt_jvm_pause_time_ms",
        "sum_jvm_pause_time_ms", "p50_jvm_pause_time_ms", "p95_jvm_pause_time_ms", "p99_jvm_pause_time_ms",
        "p999_jvm_pause_time_ms", "avg_close_session_prep_time", "min_close_session_prep_time", "max_close_session_prep_time",
        "cnt_close_session_prep_time", "sum_close_session_prep_time", "p50_close_session_prep_time",
        "p95_close_session_prep_time", "p99_close_session_prep_time", "p999_close_session_prep_time",
        "avg_read_commitproc_time_ms", "min_read_commitproc_time_ms", "max_read_commitproc_time_ms",
        "cnt_read_commitproc_time_ms", "sum_read_commitproc_time_ms", "p50_read_commitproc_time_ms",
        "p95_read_commitproc_time_ms", "p99_read_commitproc_time_ms", "p999_read_commitproc_time_ms", "avg_updatelatency",
        "min_updatelatency", "max_updatelatency", "cnt_updatelatency", "sum_updatelatency", "p50_updatelatency",
        "p95_updatelatency", "p99_updatelatency", "p999_updatelatency", "avg_local_write_committed_time_ms",
        "min_local_write_committed_time_ms", "max_local_write_committed_time_ms", "cnt_local_write_committed_time_ms",
        "sum_local_write_committed_time_ms", "p50_local_write_committed_time_ms", "p95_local_write_committed_time_ms",
        "p99_local_write_committed_time_ms", "p999_local_write_committed_time_ms", "avg_request_throttle_queue_time_ms",
        "min_request_throttle_queue_time_ms", "max_request_throttle_queue_time_ms", "cnt_request_throttle_queue_time_ms",
        "sum_request_throttle_queue_time_ms", "p50_request_throttle_queue_time_ms", "p95_request_throttle_queue_time_ms",
        "p99_request_throttle_queue_time_ms", "p999_request_throttle_queue_time_ms", "avg_readlatency", "min_readlatency",
        "max_readlatency", "cnt_readlatency", "sum_readlatency", "p50_readlatency", "p95_readlatency", "p99_readlatency",
        "p999_readlatency", "avg_quorum_ack_latency", "min_quorum_ack_latency", "max_quorum_ack_latency",
        "cnt_quorum_ack_latency", "sum_quorum_ack_latency", "p50_quorum_ack_latency", "p95_quorum_ack_latency",
        "p99_quorum_ack_latency", "p999_quorum_ack_latency", "avg_om_commit_process_time_ms", "min_om_commit_process_time_ms",
        "max_om_commit_process_time_ms", "cnt_om_commit_process_time_ms", "sum_om_commit_process_time_ms",
        "p50_om_commit_process_time_ms", "p95_om_commit_process_time_ms", "p99_om_commit_process_time_ms",
        "p999_om_commit_process_time_ms", "avg_read_final_proc_time_ms", "min_read_final_proc_time_ms",
        "max_read_final_proc_time_ms", "cnt_read_final_proc_time_ms", "sum_read_final_proc_time_ms",
        "p50_read_final_proc_time_ms", "p95_read_final_proc_time_ms", "p99_read_final_proc_time_ms",
        "p999_read_final_proc_time_ms", "avg_commit_propagation_latency", "min_commit_propagation_latency",
        "max_commit_propagation_latency", "cnt_commit_propagation_latency", "sum_commit_propagation_latency",
        "p50_commit_propagation_latency", "p95_commit_propagation_latency", "p99_commit_propagation_latency",
        "p999_commit_propagation_latency", "avg_dead_watchers_cleaner_latency", "min_dead_watchers_cleaner_latency",
        "max_dead_watchers_cleaner_latency", "cnt_dead_watchers_cleaner_latency", "sum_dead_watchers_cleaner_latency",
        "p50_dead_watchers_cleaner_latency", "p95_dead_watchers_cleaner_latency", "p99_dead_watchers_cleaner_latency",
        "p999_dead_watchers_cleaner_latency", "avg_write_final_proc_time_ms", "min_write_final_proc_time_ms",
        "max_write_final_proc_time_ms", "cnt_write_final_proc_time_ms", "sum_write_final_proc_time_ms",
        "p50_write_final_proc_time_ms", "p95_write_final_proc_time_ms", "p99_write_final_proc_time_ms",
        "p999_write_final_proc_time_ms", "avg_proposal_ack_creation_latency", "min_proposal_ack_creation_latency",
        "max_proposal_ack_creation_latency", "cnt_proposal_ack_creation_latency", "sum_proposal_ack_creation_latency",
        "p50_proposal_ack_creation_latency", "p95_proposal_ack_creation_latency", "p99_proposal_ack_creation_latency",
        "p999_proposal_ack_creation_latency", "avg_proposal_latency", "min_proposal_latency", "max_proposal_latency",
        "cnt_proposal_latency", "sum_proposal_latency", "p50_proposal_latency", "p95_proposal_latency", "p99_proposal_latency",
        "p999_proposal_latency", "avg_om_proposal_process_time_ms", "min_om_proposal_process_time_ms",
        "max_om_proposal_process_time_ms", "cnt_om_proposal_process_time_ms", "sum_om_proposal_process_time_ms",
        "p50_om_proposal_process_time_ms", "p95_om_proposal_process_time_ms", "p99_om_proposal_process_time_ms",
        "p999_om_proposal_process_time_ms", "avg_sync_processor_queue_and_flush_time_ms",
        "min_sync_processor_queue_and_flush_time_ms", "max_sync_processor_queue_and_flush_time_ms",
        "cnt_sync_processor_queue_and_flush_time_ms", "sum_sync_processor_queue_and_flush_time_ms",
        "p50_sync_processor_queue_and_flush_time_ms", "p95_sync_processor_queue_and_flush_time_ms",
        "p99_sync_processor_queue_and_flush_time_ms", "p999_sync_processor_queue_and_flush_time_ms", "avg_propagation_latency",
        "min_propagation_latency", "max_propagation_latency", "cnt_propagation_latency", "sum_propagation_latency",
        "p50_propagation_latency", "p95_propagation_latency", "p99_propagation_latency", "p999_propagation_latency",
        "avg_server_write_committed_time_ms", "min_server_write_committed_time_ms", "max_server_write_committed_time_ms",
        "cnt_server_write_committed_time_ms", "sum_server_write_committed_time_ms", "p50_server_write_committed_time_ms",
        "p95_server_write_committed_time_ms", "p99_server_write_committed_time_ms", "p999_server_write_committed_time_ms",
        "avg_sync_processor_queue_time_ms", "min_sync_processor_queue_time_ms", "max_sync_processor_queue_time_ms",
        "cnt_sync_processor_queue_time_ms", "sum_sync_processor_queue_time_ms", "p50_sync_processor_queue_time_ms",
        "p95_sync_processor_queue_time_ms", "p99_sync_processor_queue_time_ms", "p999_sync_processor_queue_time_ms",
        "avg_sync_processor_queue_flush_time_ms", "min_sync_processor_queue_flush_time_ms",
        "max_sync_processor_queue_flush_time_ms", "cnt_sync_processor_queue_flush_time_ms",
        "sum_sync_processor_queue_flush_time_ms", "p50_sync_processor_queue_flush_time_ms",
        "p95_sync_processor_queue_flush_time_ms", "p99_sync_processor_queue_flush_time_ms",
        "p999_sync_processor_queue_flush_time_ms", "avg_write_commitproc_time_ms", "min_write_commitproc_time_ms",
        "max_write_commitproc_time_ms", "cnt_write_commitproc_time_ms", "sum_write_commitproc_time_ms",
        "p50_write_commitproc_time_ms", "p95_write_commitproc_time_ms", "p99_write_commitproc_time_ms",
        "p999_write_commitproc_time_ms"
    ];
}
