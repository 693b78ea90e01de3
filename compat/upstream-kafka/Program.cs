// run-compat.sh's upstream Kafka: one broker in Docker through Testcontainers.Kafka, the way a
// .NET user's CI starts one. Prints "bootstrap HOST:PORT" when the broker answers, then keeps it
// until stdin closes or SIGTERM; the container is removed on the way out (and by Testcontainers'
// resource reaper if this process dies).
//   dotnet run --project compat/upstream-kafka [-- IMAGE]
// Exit status: 0 after a clean stop; 3 when no Docker engine answers (one line on stderr says so);
// 1 when the container did not start.
using Testcontainers.Kafka;

var image = args.Length > 0 ? args[0] : "confluentinc/cp-kafka:7.5.12";

if (NoDockerEngine() is { } why)
{
    Console.Error.WriteLine($"no Docker engine: {why}");
    return 3;
}

KafkaContainer kafka;
try
{
    kafka = new KafkaBuilder(image).Build();
    await kafka.StartAsync();
}
catch (Exception e)
{
    Console.Error.WriteLine($"upstream Kafka ({image}) did not start: {e.GetType().Name}: {e.Message}");
    return 1;
}

await using (kafka)
{
    var bootstrap = kafka.GetBootstrapAddress();
    // GetBootstrapAddress() is "PLAINTEXT://host:port/" style; the runner wants host:port.
    var hostPort = bootstrap.Contains("://", StringComparison.Ordinal) ? bootstrap[(bootstrap.IndexOf("://", StringComparison.Ordinal) + 3)..] : bootstrap;
    Console.WriteLine($"bootstrap {hostPort.TrimEnd('/')}");
    Console.Out.Flush();

    var stop = new TaskCompletionSource();
    using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
        System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
    _ = Task.Run(() => { while (Console.In.ReadLine() is not null) { } stop.TrySetResult(); });
    await stop.Task;
}
return 0;

// Where the engine would be: DOCKER_HOST (a unix socket path or tcp://), else the default socket.
// A tcp:// host is left to Testcontainers to try.
static string? NoDockerEngine()
{
    var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
    if (host is { Length: > 0 } && !host.StartsWith("unix://", StringComparison.Ordinal)) return null;
    var socket = host is { Length: > 0 } ? host["unix://".Length..] : "/var/run/docker.sock";
    if (!File.Exists(socket)) return $"{socket} does not exist";
    try
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        return null;
    }
    catch (System.Net.Sockets.SocketException e) { return $"{socket} refuses connections ({e.SocketErrorCode})"; }
}
