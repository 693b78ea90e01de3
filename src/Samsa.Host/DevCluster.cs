using System.Globalization;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Cluster.ZooKeeper;
using Samsa.Kafka.Broker.Config;
using Samsa.Keeper.Client;
using Samsa.Keeper.Protocol;

namespace Samsa.Host;

/// <summary>
/// <c>samsa dev [--brokers N]</c>: the Keeper and N brokers in one process, the brokers in
/// ZooKeeper mode on the Keeper, so zkCli.sh against the dev Keeper shows upstream's layout
/// (/brokers/ids/1, /controller, /brokers/topics/...). broker.id 1..N on kafka-port,
/// kafka-port+1, ...; logs in DATA/kafka (one broker, as before) or DATA/kafka-ID. The Keeper
/// starts first because the brokers register with it.
/// </summary>
internal static class DevCluster
{
    public static async Task<int> RunAsync(string host, int kafkaPort, int zkPort, string data, int brokers, ShutdownSignal shutdown,
        Func<string, string> formatHost, DevSecure? secure = null, int sslPort = 0, DevConfigFiles? files = null, int keepers = 1, int consolePort = 0)
    {
        // One `samsa dev` per data directory: a second one would start its Keeper on the same
        // txn log and snapshots before its brokers' log directory locks refused it.
        using var dataLock = Samsa.Kafka.Storage.DirectoryLock.Acquire(data, ".samsa-dev.lock", "samsa dev", "stop it or give another --data");
        // The brokers need the Keeper's address before they are built; with --zk-port 0 a free port
        // is chosen here so the Keeper's start and the first broker's log loading overlap.
        if (zkPort == 0) zkPort = FreePort(host);
        var keeperStart = keepers > 1
            ? Task.Run<IAsyncDisposable?>(async () => await DevKeeper.StartEnsembleAsync(host, zkPort, keepers, data, formatHost, shutdown.Token))
            : Task.Run(() => StartKeeperAsync(host, zkPort, Path.Combine(data, "keeper"), files, shutdown.Token));
        IAsyncDisposable? keeperHandle = null;
        // --keepers N: the brokers' zookeeper.connect lists every member of the ensemble
        string connect = string.Join(",", Enumerable.Range(0, keepers).Select(i => $"{formatHost(host)}:{(zkPort + i).ToString(CultureInfo.InvariantCulture)}"));
        var started = new List<KafkaBroker>();
        WebConsole.ConsoleServer? console = null;
        string internalReplicas = Math.Min(brokers, 3).ToString(CultureInfo.InvariantCulture);
        try
        {
            for (int id = 1; id <= brokers; id++)
            {
                int port = kafkaPort == 0 ? 0 : kafkaPort + id - 1;
                var props = new Dictionary<string, string>
                {
                    ["broker.id"] = id.ToString(CultureInfo.InvariantCulture),
                    ["listeners"] = $"PLAINTEXT://{formatHost(host)}:{port.ToString(CultureInfo.InvariantCulture)}",
                    ["log.dirs"] = Path.Combine(data, brokers == 1 ? "kafka" : $"kafka-{id.ToString(CultureInfo.InvariantCulture)}"),
                    ["zookeeper.connect"] = connect,
                    // Internal topics get min(N, 3) replicas (upstream's default is 3), so one dev
                    // broker can create them and a cluster's coordinators fail over.
                    ["offsets.topic.replication.factor"] = internalReplicas,
                    ["transaction.state.log.replication.factor"] = internalReplicas,
                    ["transaction.state.log.min.isr"] = Math.Min(brokers, 2).ToString(CultureInfo.InvariantCulture),
                    // As upstream's sample config/server.properties for development: no 3 s wait for
                    // more members before a new group's first rebalance.
                    ["group.initial.rebalance.delay.ms"] = "0",
                    ["samsa.metrics.port"] = "0",   // issue #20: /metrics on a free port unless overridden
                    ["samsa.metrics.host"] = host,
                    ["samsa.tap.enabled"] = "true",   // issue #20: the request tap at /tap on that port
                };
                files?.ApplyBroker(props);
                if (id > 1 && int.TryParse(props["samsa.metrics.port"], out int mp) && mp > 0) props["samsa.metrics.port"] = (mp + id - 1).ToString(CultureInfo.InvariantCulture);
                secure?.Configure(props, formatHost(host), sslPort == 0 ? 0 : sslPort + id - 1);
                StartupTrace.Mark($"broker {id} config");
                var broker = new KafkaBroker(new BrokerConfig(props), log: Console.Error.WriteLine);
                StartupTrace.Mark($"broker {id} built");
                try
                {
                    keeperHandle ??= await keeperStart;
                    StartupTrace.Mark("keeper started");
                    if (brokers == 1) await AdoptLocalTopicsAsync(broker, connect);
                    await broker.StartAsync();
                    StartupTrace.Mark($"broker {id} started");
                }
                catch
                {
                    await broker.DisposeAsync();
                    throw;
                }
                started.Add(broker);
                if (id == 1 && secure is not null) await DevSecure.CreateUsersAsync(broker);
                if (id == 1)
                    Console.Error.WriteLine($"dev settings: offsets.topic.replication.factor={props["offsets.topic.replication.factor"]} group.initial.rebalance.delay.ms={props["group.initial.rebalance.delay.ms"]} (upstream default 3000)");
                Console.Out.WriteLine($"kafka listening on {Program.FormatEndPoint(broker.BoundEndPoint)}");
                if (secure is not null)
                {
                    Console.Out.WriteLine($"kafka SSL listening on {Program.FormatEndPoint(broker.BoundEndPointOf("SSL"))}");
                    Console.Out.WriteLine($"kafka SASL_SSL listening on {Program.FormatEndPoint(broker.BoundEndPointOf("SASL_SSL"))}");
                }
                if (broker.MetricsEndPoint is { } metrics) Console.Out.WriteLine($"kafka metrics on http://{Program.FormatEndPoint(metrics)}/metrics");
                if (broker.MetricsEndPoint is { } tap && broker.Tap is not null) Console.Out.WriteLine($"kafka request tap on http://{Program.FormatEndPoint(tap)}/tap (samsa tap --url http://{Program.FormatEndPoint(tap)} --follow)");
                Console.Out.Flush();
            }
            secure?.PrintClientConfig(started);
            // The web console (issue #20) talks to the brokers and the Keeper as a client; --console-port -1 (--no-console) serves none.
            if (consolePort >= 0)
            {
                console = WebConsole.ConsoleServer.Start(host, consolePort, new WebConsole.ConsoleTarget(
                    string.Join(",", started.Select(b => Program.FormatEndPoint(b.BoundEndPoint))), connect,
                    started.Where(b => b.MetricsEndPoint is not null).Select(b => $"http://{Program.FormatEndPoint(b.MetricsEndPoint!)}/metrics").ToList()));
                Console.Out.WriteLine($"console on {console.Url}");
                Console.Out.Flush();
            }
            await shutdown.WaitAsync();
            return 0;
        }
        finally
        {
            if (console is not null) await console.DisposeAsync();
            // The whole cluster stops: each broker but the last hands its leaderships on (controlled
            // shutdown); the last has no one to hand them to, and would only retry for
            // controlled.shutdown.max.retries × retry.backoff.ms (15 s) before stopping anyway.
            for (int i = started.Count - 1; i >= 0; i--)
            {
                if (i == 0) started[i].ControlledShutdownOnStop = false;
                await started[i].DisposeAsync();
            }
            keeperHandle ??= await keeperStart;
            if (keeperHandle is not null) await keeperHandle.DisposeAsync();
        }
    }

    /// <summary>
    /// <c>samsa dev --standalone</c>: the single-node broker as `samsa dev` ran it before ZooKeeper
    /// mode (topics kept in DATA/kafka, nothing registered in the Keeper). The Keeper and the broker
    /// start side by side, which saves the ZooKeeper session and registration on the way to the
    /// `kafka listening` line (about 0.2 s of CPU).
    /// </summary>
    public static async Task<int> RunStandaloneAsync(string host, int kafkaPort, int zkPort, string data, ShutdownSignal shutdown,
        Func<string, string> formatHost, DevSecure? secure = null, int sslPort = 0, DevConfigFiles? files = null)
    {
        var keeperStart = Task.Run(() => StartKeeperAsync(host, zkPort, Path.Combine(data, "keeper"), files, shutdown.Token));
        var props = new Dictionary<string, string>
        {
            ["broker.id"] = "1",
            ["listeners"] = $"PLAINTEXT://{formatHost(host)}:{kafkaPort.ToString(CultureInfo.InvariantCulture)}",
            ["log.dirs"] = Path.Combine(data, "kafka"),
            ["offsets.topic.replication.factor"] = "1",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.min.isr"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["samsa.metrics.port"] = "0",
            ["samsa.metrics.host"] = host,
            ["samsa.tap.enabled"] = "true",
        };
        files?.ApplyBroker(props);
        secure?.Configure(props, formatHost(host), sslPort);
        await using var broker = new KafkaBroker(new BrokerConfig(props), log: Console.Error.WriteLine);
        await broker.StartAsync();
        if (secure is not null) await DevSecure.CreateUsersAsync(broker);
        Console.Error.WriteLine($"dev settings: offsets.topic.replication.factor={props["offsets.topic.replication.factor"]} group.initial.rebalance.delay.ms={props["group.initial.rebalance.delay.ms"]} (upstream default 3000)");
        await using var keeper = await keeperStart;
        Console.Out.WriteLine($"kafka listening on {Program.FormatEndPoint(broker.BoundEndPoint)}");
        if (broker.MetricsEndPoint is { } metrics) Console.Out.WriteLine($"kafka metrics on http://{Program.FormatEndPoint(metrics)}/metrics");
        if (broker.MetricsEndPoint is { } tap && broker.Tap is not null) Console.Out.WriteLine($"kafka request tap on http://{Program.FormatEndPoint(tap)}/tap (samsa tap --url http://{Program.FormatEndPoint(tap)} --follow)");
        if (secure is not null)
        {
            Console.Out.WriteLine($"kafka SSL listening on {Program.FormatEndPoint(broker.BoundEndPointOf("SSL"))}");
            Console.Out.WriteLine($"kafka SASL_SSL listening on {Program.FormatEndPoint(broker.BoundEndPointOf("SASL_SSL"))}");
            secure.PrintClientConfig([broker]);
        }
        Console.Out.Flush();
        await shutdown.WaitAsync();
        return 0;
    }

    /// <summary>The dev Keeper (<see cref="KeeperCommand.DevConfig"/>) with --keeper-config and
    /// --keeper-override applied on top; it prints `keeper listening on HOST:PORT` once it accepts.</summary>
    private static async Task<IAsyncDisposable?> StartKeeperAsync(string host, int port, string dataDir, DevConfigFiles? files, CancellationToken stop)
    {
        stop.ThrowIfCancellationRequested();
        Directory.CreateDirectory(dataDir);
        var config = KeeperCommand.DevConfig(dataDir, host, port);
        files?.ApplyKeeper(config);
        return await KeeperCommand.StartAsync(config);
    }

    private static int FreePort(string host)
    {
        var address = System.Net.IPAddress.TryParse(host, out var ip) ? ip : System.Net.IPAddress.Loopback;
        var listener = new System.Net.Sockets.TcpListener(address, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>
    /// A dev data directory written before `samsa dev` ran in ZooKeeper mode has topics (and maybe
    /// dynamic broker configs) that ZooKeeper has never heard of, and a broker in ZooKeeper mode
    /// drops local topics the layout does not list. So when the Keeper has no layout yet
    /// (/brokers/topics missing) and the broker has local topics, they are registered first, as
    /// this one broker's replicas with their topic ids and overrides; the controller then elects
    /// broker 1 leader of each partition and the logs stay.
    /// </summary>
    private static async Task AdoptLocalTopicsAsync(KafkaBroker broker, string connect)
    {
        var topics = broker.Replicas.Topics;
        var perBroker = broker.Config.DynamicConfigs(perBroker: true);
        var clusterDefault = broker.Config.DynamicConfigs(perBroker: false);
        if (topics.Count == 0 && perBroker.Count == 0 && clusterDefault.Count == 0) return;
        await using var zk = await KeeperClient.ConnectAsync(connect);
        if (await zk.ExistsAsync(ZkData.Topics) is not null) return;
        foreach (var path in new[] { "/brokers", "/config", "/config/topics", "/config/brokers" })
        {
            try { await zk.CreateAsync(path, null, Acls.OpenAclUnsafe); }
            catch (Samsa.Keeper.Client.KeeperException e) when (e.Code == Code.NodeExists) { }
        }
        // As AdminZkClient creates a topic: its configs first, then the topic znode the controller acts on.
        foreach (var topic in topics)
            await zk.CreateAsync(ZkData.TopicConfig(topic.Name), ZkData.EncodeConfig(topic.Configs), Acls.OpenAclUnsafe);
        await zk.CreateAsync(ZkData.Topics, null, Acls.OpenAclUnsafe);
        foreach (var topic in topics)
        {
            var assignment = topic.Partitions.ToDictionary(p => p.Index, _ => new List<int> { broker.BrokerId });
            await zk.CreateAsync(ZkData.Topic(topic.Name), ZkData.EncodeTopic(topic.Id, assignment), Acls.OpenAclUnsafe);
        }
        if (perBroker.Count > 0)
            await zk.CreateAsync("/config/brokers/" + broker.BrokerId.ToString(CultureInfo.InvariantCulture), ZkData.EncodeConfig(perBroker), Acls.OpenAclUnsafe);
        if (clusterDefault.Count > 0)
            await zk.CreateAsync("/config/brokers/<default>", ZkData.EncodeConfig(clusterDefault), Acls.OpenAclUnsafe);
        Console.Error.WriteLine($"dev: registered {topics.Count} existing local topic(s) in ZooKeeper");
    }
}
