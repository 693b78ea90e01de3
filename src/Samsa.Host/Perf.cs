namespace Samsa.Host;

/// <summary><c>samsa perf</c>: load generators against a broker; see PerfRunner.</summary>
internal static class Perf
{
    public static Task<int> RunAsync(string[] args) => PerfRunner.RunAsync(args);
}
