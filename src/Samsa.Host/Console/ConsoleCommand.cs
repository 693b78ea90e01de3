using System.Globalization;
using System.Net;
using Samsa.Host.Admin;
using Samsa.Kafka.Broker;

namespace Samsa.Host.WebConsole;

/// <summary>
/// Where the web console runs besides `samsa dev`: <c>samsa console</c> against any Kafka and
/// ZooKeeper address, and a `samsa broker` with <c>samsa.console.port</c> set.
/// </summary>
internal static class ConsoleCommand
{
    private const string Tool = "console";

    public static async Task<int> RunAsync(string[] argv)
    {
        var args = new AdminArgs(Tool, argv,
            new HashSet<string> { "--bootstrap-server", "--zookeeper", "--host", "--port", "--metrics-url", "--command-config" }, new HashSet<string>());
        string bootstrap = args.Required(Tool, "--bootstrap-server");
        AdminClient.ParseServers(bootstrap);   // a malformed list is a usage error now, not on every page
        int port = args.Int(Tool, "--port") ?? 0;
        if (port is < 0 or > 65535) throw new UsageException($"{Tool}: --port expects 0-65535");
        var props = args.Get("--command-config") is { } cc ? AdminArgs.LoadProperties(cc) : null;
        using var shutdown = new ShutdownSignal();
        await using var server = ConsoleServer.Start(args.Get("--host") ?? "127.0.0.1", port,
            new ConsoleTarget(bootstrap, args.Get("--zookeeper"), args.All("--metrics-url").ToList(), props));
        Console.Out.WriteLine($"console on {server.Url}");
        Console.Out.Flush();
        await shutdown.WaitAsync();
        return 0;
    }

    /// <summary>The console of a `samsa broker` whose config sets samsa.console.port (null when it is -1):
    /// it reaches the cluster through this broker's primary listener and zookeeper.connect.</summary>
    public static ConsoleServer? ForBroker(KafkaBroker broker)
    {
        int port = (int)broker.Config.Get("samsa.console.port")!;
        if (port < 0) return null;
        var ep = broker.BoundEndPoint;
        var reach = ep.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, ep.Port)
            : ep.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, ep.Port) : ep;
        var metrics = broker.MetricsEndPoint is { } m
            ? new List<string> { $"http://{Program.FormatEndPoint(m.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, m.Port) : m)}/metrics" }
            : [];
        return ConsoleServer.Start(broker.Config.GetString("samsa.console.host") ?? "0.0.0.0", port,
            new ConsoleTarget(Program.FormatEndPoint(reach), broker.Config.GetString("zookeeper.connect"), metrics));
    }
}
