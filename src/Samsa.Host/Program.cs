using System.Globalization;
using System.Runtime.InteropServices;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Config;

namespace Samsa.Host;

/// <summary>
/// The <c>samsa</c> command line. Arguments are parsed by hand (no command-line library) so that
/// <c>samsa dev</c> is listening within a few hundred milliseconds of process start.
/// </summary>
public static class Program
{
    private const string Usage =
        "usage:\n" +
        "  samsa dev [--data DIR] [--host 127.0.0.1] [--kafka-port 9092] [--zk-port 2181] [--brokers 1] [--keepers 1|3|5] [--standalone]\n" +
        "            [--broker-config server.properties] [--override key=value ...]     (every dev broker)\n" +
        "            [--keeper-config zoo.cfg] [--keeper-override key=value ...]        (the dev Keeper; not with --keepers 3|5)\n" +
        "            [--secure [--ssl-port PORT]]   (SSL and SASL_SSL listeners beside PLAINTEXT, dev users, ACLs, CA in DATA/tls, prints client configs)\n" +
        "            [--console-port 0 | --no-console]   (the web console, on a free port unless given)\n" +
        "  samsa broker --config server.properties [--jaas-config kafka_server_jaas.conf] [--override key=value ...]\n" +
        "  samsa keeper --config zoo.cfg [--recover-truncate]\n" +
        "  samsa perf produce|consume|matrix [--record-size 1024] [--bytes N | --records N] [--batch-bytes 16384] [--inflight 5]\n" +
        "             [--acks 0|1|all] [--compression none|lz4|...] [--bootstrap HOST:PORT [--broker-pid PID]]\n" +
        "             [--partitions 1,4,16] [--rf 1,3] [--connections 1,4,16] [--brokers N]   (lists sweep: one row per combination)\n" +
        "             [--tls [--tls-ca CA.pem]]   (the broker serves SSL only; TLS cost beside a plain run)\n" +
        "  samsa perf group [--members 10,100] [--initial-delay-ms 3000] [--heartbeat-ms 3000] [--rounds 3] [--bootstrap HOST:PORT] [--protocol classic|consumer|both]\n" +
        "  samsa perf keeper --target HOST:PORT [--sessions 8] [--requests 20000] [--inflight 64] [--size 100] [--ops create,exists,getData,setData,multi,delete]\n" +
        "  samsa kafka-topics|kafka-consumer-groups|kafka-configs|kafka-acls --bootstrap-server HOST:PORT [--command-config FILE] ...\n" +
        "             (upstream's kafka-*.sh options and output, no JVM; `samsa kafka-topics --help` for each)\n" +
        "  samsa console --bootstrap-server HOST:PORT [--zookeeper HOST:PORT] [--host 127.0.0.1] [--port 0] [--metrics-url URL ...] [--command-config FILE]\n" +
        "             (the web console against any Kafka and ZooKeeper)\n" +
        "  samsa zkcli -server HOST:PORT [command args]   (zkCli.sh's commands; a script on stdin when no command is given)\n" +
        TapCommand.Usage +
        "  samsa version\n";

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.Write(Usage);
            return 2;
        }
        if (args[0] == "keeper") KeeperRuntimeSettings.ApplyBeforeStart(args);
        // Broker processes (`samsa broker`, and `samsa dev`, which hosts brokers beside its Keepers
        // and console) run socket continuations on the runtime's event threads (issue #19: one
        // hand-off and worker wake-up fewer per read); DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0
        // in the environment turns it off. The Keeper's listeners hand frames to the thread pool
        // either way. Not for `samsa keeper`.
        // So does `samsa perf produce|consume`, the load generator (its children are `samsa broker`
        // or `samsa dev`, which would set it anyway): each answer is read, and the next request of
        // its slot sent, on the event thread.
        if (args[0] is "broker" or "dev" || (args[0] == "perf" && args.Length > 1 && args[1] is "produce" or "consume" or "fetch"))
            Samsa.Net.SocketEventThread.PreferInlineCompletions();
        StartupTrace.Mark("main");
        var rest = args[1..];
        if (args[0] is "dev" or "broker" or "keeper")
            Console.SetError(TextWriter.Synchronized(new TimestampedWriter(RawError)));
        try
        {
            return args[0] switch
            {
                "dev" => await DevAsync(rest),
                "broker" => await BrokerAsync(rest),
                "keeper" => await Keeper.RunAsync(rest),
                "console" => await WebConsole.ConsoleCommand.RunAsync(rest),
                "perf" => rest.Length > 0 && rest[0] == "keeper" ? await KeeperPerf.RunAsync(rest[1..]) : await Perf.RunAsync(rest),
                "kafka-topics" or "kafka-consumer-groups" or "kafka-configs" or "kafka-acls" or "zkcli" => await Admin.AdminCommands.RunAsync(args[0], rest),
                "tap" => await TapCommand.RunAsync(rest, Console.Out),
                "help" or "--help" or "-h" => PrintUsage(0),
                "version" or "--version" => PrintVersion(),
                _ => Fail($"unknown command '{args[0]}'"),
            };
        }
        catch (UsageException e)
        {
            return Fail(e.Message);
        }
        catch (ConfigValueException e)
        {
            Console.Error.WriteLine($"samsa: configuration error: {e.Message}");
            return 1;
        }
        catch (Samsa.Keeper.Server.KeeperConfigException e)
        {
            Console.Error.WriteLine($"samsa: Keeper configuration error: {e.Message}");
            return 1;
        }
        catch (Samsa.Kafka.Broker.Cluster.InconsistentClusterIdException e)
        {
            // One line, as upstream's start-up fails with InconsistentClusterIdException.
            Console.Error.WriteLine($"samsa: {e.Message}");
            return 1;
        }
        catch (Samsa.Kafka.Storage.DirectoryInUseException e)
        {
            // One line, as upstream's start-up fails with "Failed to acquire lock on file .lock".
            Console.Error.WriteLine($"samsa: {e.Message}");
            return 1;
        }
        catch (Samsa.Net.ListenerBindException e)
        {
            // One line instead of a stack trace, as upstream's start-up fails with
            // "Socket server failed to bind to HOST:PORT: Address already in use".
            Console.Error.WriteLine($"samsa: {e.Message}");
            return 1;
        }
    }

    // The process's stderr before the server commands stamp it: usage text is not a log line.
    private static readonly TextWriter RawError = Console.Error;

    private static int PrintUsage(int code) { Console.Out.Write(Usage); return code; }

    /// <summary>`samsa version`: the package version and the commit it was built from (both stamped
    /// by Directory.Build.props into the informational version "VERSION+COMMIT").</summary>
    private static int PrintVersion()
    {
        string info = typeof(Program).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";
        int plus = info.IndexOf('+');
        string version = plus < 0 ? info : info[..plus];
        string commit = plus < 0 ? "unknown" : info[(plus + 1)..];
        Console.Out.WriteLine($"samsa {version} (commit {commit}, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.RuntimeIdentifier})");
        return 0;
    }

    private static int Fail(string message)
    {
        RawError.WriteLine($"samsa: {message}");
        RawError.Write(Usage);
        return 2;
    }

    /// <summary>The Keeper and one broker (or --brokers N) in one process, the brokers in ZooKeeper mode on the Keeper.</summary>
    private static async Task<int> DevAsync(string[] args)
    {
        string host = "127.0.0.1";
        int kafkaPort = 9092, zkPort = 2181, brokers = 1, keepers = 1;
        bool standalone = false, secure = false;
        int? sslPort = null;
        int consolePort = 0;
        string? data = null;
        var files = new DevConfigFiles();
        for (int i = 0; i < args.Length; i++)
        {
            if (files.TryParse(args, ref i)) continue;
            switch (args[i])
            {
                case "--brokers":
                    if (!int.TryParse(Value(args, ref i), NumberStyles.None, CultureInfo.InvariantCulture, out brokers) || brokers is < 1 or > 64)
                        throw new UsageException("dev: --brokers expects a number from 1 to 64");
                    break;
                case "--keepers":
                    if (!int.TryParse(Value(args, ref i), NumberStyles.None, CultureInfo.InvariantCulture, out keepers) || keepers is not (1 or 3 or 5))
                        throw new UsageException("dev: --keepers expects 1, 3 or 5 (a Keeper ensemble on ports --zk-port, +1, ...)");
                    break;
                case "--standalone": standalone = true; break;
                case "--secure": secure = true; break;
                case "--ssl-port": sslPort = Port(args, ref i); break;
                case "--console-port": consolePort = Port(args, ref i); break;
                case "--no-console": consolePort = -1; break;
                case "--data": data = Value(args, ref i); break;
                case "--host": host = Value(args, ref i); break;
                case "--kafka-port": kafkaPort = Port(args, ref i); break;
                case "--zk-port": zkPort = Port(args, ref i); break;
                default: throw new UsageException($"dev: unknown option '{args[i]}'");
            }
        }
        var replaced = files.Validate();
        if (replaced.Count > 0)
            Console.Error.WriteLine($"dev: {string.Join(", ", replaced)} from the given files replaced by dev's own (--data, --host, --kafka-port, --zk-port, --brokers)");
        data = Path.GetFullPath(data ?? Path.Combine(Path.GetTempPath(), "samsa-dev"));
        Directory.CreateDirectory(data);

        if (standalone && consolePort >= 0 && args.Contains("--console-port"))
            throw new UsageException("dev: --standalone serves no console; drop --console-port or --standalone");
        if (standalone && brokers > 1) throw new UsageException("dev: --standalone runs one broker; it cannot be combined with --brokers");
        if (keepers > 1 && (standalone || zkPort == 0)) throw new UsageException("dev: --keepers needs ZooKeeper mode and a fixed --zk-port");
        if (keepers > 1 && (files.KeeperFile.Count > 0 || files.KeeperOverrides.Count > 0))
            throw new UsageException("dev: --keeper-config/--keeper-override apply to the single dev Keeper; not with --keepers 3|5");

        if (sslPort is not null && !secure) throw new UsageException("dev: --ssl-port needs --secure");
        // SSL ports follow the brokers' plain ports (9093 beside a single broker on 9092).
        var tls = secure ? DevSecure.Prepare(data, host) : null;
        if (tls is not null) tls.SaslPortOffset = brokers;
        int firstSslPort = sslPort ?? (kafkaPort == 0 ? 0 : kafkaPort + brokers);

        using var shutdown = new ShutdownSignal();
        return standalone
            ? await DevCluster.RunStandaloneAsync(host, kafkaPort, zkPort, data, shutdown, FormatHost, tls, firstSslPort, files)
            : await DevCluster.RunAsync(host, kafkaPort, zkPort, data, brokers, shutdown, FormatHost, tls, firstSslPort, files, keepers, consolePort);
    }

    private static async Task<int> BrokerAsync(string[] args)
    {
        string? configPath = null;
        var overrides = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--config": configPath = Value(args, ref i); break;
                // Upstream's -Djava.security.auth.login.config (KafkaServer JAAS file).
                case "--jaas-config": overrides.Add(new("java.security.auth.login.config", Value(args, ref i))); break;
                case "--override":
                    var kv = Value(args, ref i);
                    int eq = kv.IndexOf('=');
                    if (eq <= 0) throw new UsageException($"broker: --override expects key=value, got '{kv}'");
                    overrides.Add(new(kv[..eq], kv[(eq + 1)..]));
                    break;
                default:
                    // Upstream's kafka-server-start.sh takes the properties file as a bare argument.
                    if (configPath is null && !args[i].StartsWith('-')) { configPath = args[i]; break; }
                    throw new UsageException($"broker: unknown option '{args[i]}'");
            }
        }
        if (configPath is null) throw new UsageException("broker: --config server.properties is required");
        // kafka-run-class.sh hands KAFKA_OPTS to the JVM: honour its JAAS file unless --jaas-config gave one.
        if (!overrides.Any(kv => kv.Key == "java.security.auth.login.config")
            && Samsa.Kafka.Broker.Security.Sasl.JaasConfig.LoginConfigFromKafkaOpts(Environment.GetEnvironmentVariable("KAFKA_OPTS")) is { } jaasFile)
            overrides.Add(new("java.security.auth.login.config", jaasFile));
        if (!File.Exists(configPath))
        {
            Console.Error.WriteLine($"samsa: config file not found: {configPath}");
            return 1;
        }
        using var shutdown = new ShutdownSignal();
        await using var broker = new KafkaBroker(BrokerConfig.Load(configPath, overrides), log: Console.Error.WriteLine);
        await broker.StartAsync();
        Console.Out.WriteLine($"kafka listening on {FormatEndPoint(broker.BoundEndPoint)}");
        await using var console = WebConsole.ConsoleCommand.ForBroker(broker);
        if (console is not null) Console.Out.WriteLine($"console on {console.Url}");
        Console.Out.Flush();
        await shutdown.WaitAsync();
        return 0;
    }

    internal static string Value(string[] args, ref int i)
    {
        if (i + 1 >= args.Length) throw new UsageException($"option '{args[i]}' needs a value");
        return args[++i];
    }

    internal static int Port(string[] args, ref int i)
    {
        var name = args[i];
        var v = Value(args, ref i);
        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new UsageException($"option '{name}' expects a port number 0-65535, got '{v}'");
        return port;
    }

    internal static int PositiveInt(string[] args, ref int i)
    {
        var name = args[i];
        var v = Value(args, ref i);
        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 0)
            throw new UsageException($"option '{name}' expects a positive integer, got '{v}'");
        return n;
    }

    private static string FormatHost(string host) => host.Contains(':') ? $"[{host}]" : host;

    internal static string FormatEndPoint(System.Net.IPEndPoint ep) => $"{FormatHost(ep.Address.ToString())}:{ep.Port}";
}

internal sealed class UsageException(string message) : Exception(message);

/// <summary>SIGTERM, SIGINT (Ctrl-C) and SIGQUIT request a clean stop instead of killing the process.</summary>
internal sealed class ShutdownSignal : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration[] _registrations;

    public ShutdownSignal()
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGQUIT, Handle),
        ];
    }

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true; // we stop ourselves, after closing listeners and flushing logs
        _cts.Cancel();
    }

    public CancellationToken Token => _cts.Token;

    public Task WaitAsync()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _cts.Token.Register(() => tcs.TrySetResult());
        return tcs.Task;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
    }
}
