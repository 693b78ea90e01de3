// What the two Confluent.Kafka compat runners share (../confluent-kafka-dotnet on 1.9.3 + Debian's
// librdkafka 2.0.2, ../confluent-kafka-dotnet-216 on 2.16.0 + its own librdkafka): the target's
// environment (compat/README.md), the cluster target's helpers and the PASS/FAIL/SKIP loop the
// harness reads. Each runner compiles this file in (its csproj), so neither depends on the other.
using System.Diagnostics;

namespace Samsa.Compat;

/// <summary>A scenario's check failed: printed as `FAIL name: message`.</summary>
public sealed class FailException(string message) : Exception(message);

/// <summary>The scenario cannot run on this target or client: printed as `SKIP name: message`.</summary>
public sealed class SkipException(string message) : Exception(message);

public static class CompatRunner
{
    public static readonly string Addr = Environment.GetEnvironmentVariable("COMPAT_ADDR") ?? "127.0.0.1:9092";
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    // The cluster target (compat/lib/cluster.py): topics and new partitions get an explicit
    // assignment whose bootstrap broker is the last replica, so it leads none of them.
    public static readonly bool Cluster = Environment.GetEnvironmentVariable("COMPAT_TARGET") == "cluster";
    public static readonly int BootstrapId = int.TryParse(Environment.GetEnvironmentVariable("COMPAT_BOOTSTRAP_ID"), out var b) ? b : -1;
    public static readonly List<int> Leaders = (Environment.GetEnvironmentVariable("COMPAT_LEADERS") ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
    public static readonly int Brokers = Cluster ? Leaders.Count + 1 : 1;

    public static List<int> ReplicasOf(int p) => [.. Leaders.Skip(p % Leaders.Count), .. Leaders.Take(p % Leaders.Count), BootstrapId];

    /// <summary>compat/lib/cluster.py: kill or start a broker, find a group's coordinator.</summary>
    public static string ClusterCtl(params string[] args)
    {
        var script = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "lib", "cluster.py"));
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        var output = proc.StandardOutput.ReadToEnd() + proc.StandardError.ReadToEnd();
        proc.WaitForExit();
        Console.WriteLine($"  cluster {string.Join(' ', args)}: {output.Trim()}");
        if (proc.ExitCode != 0) throw new FailException($"cluster.py {string.Join(' ', args)} failed: {output.Trim()}");
        return output.Trim();
    }

    public static int CoordinatorOf(string group) => int.Parse(ClusterCtl("coordinator", group).Split('\n')[^1]);

    public static void Check(bool cond, string message)
    {
        if (!cond) throw new FailException(message);
    }

    public static string Flat(string s)
    {
        var f = s.Replace('\n', ' ').Replace('\r', ' ');
        return f.Length > 300 ? f[..300] : f;
    }

    /// <summary>Runs the named scenarios (all without names; `--list` lists them) and prints one
    /// result line per scenario. <paramref name="refuseAll"/>, when set, fails every scenario with
    /// that reason (e.g. the wrong librdkafka was loaded). Returns the process exit code.</summary>
    public static async Task<int> RunAsync(IReadOnlyDictionary<string, Func<Task>> scenarios, string[] args, string? refuseAll = null)
    {
        if (args is ["--list"])
        {
            foreach (var name in scenarios.Keys) Console.WriteLine(name);
            return 0;
        }
        var failed = 0;
        foreach (var name in args.Length > 0 ? args : scenarios.Keys.ToArray())
        {
            if (!scenarios.TryGetValue(name, out var run))
            {
                Console.WriteLine($"FAIL {name}: unknown scenario for this client");
                failed++;
                continue;
            }
            if (refuseAll is not null)
            {
                Console.WriteLine($"FAIL {name}: {refuseAll}");
                failed++;
                continue;
            }
            var sw = Stopwatch.StartNew();
            try
            {
                await run();
                Console.WriteLine($"PASS {name}");
            }
            catch (SkipException e)
            {
                Console.WriteLine($"SKIP {name}: {e.Message}");
            }
            catch (FailException e)
            {
                failed++;
                Console.WriteLine($"FAIL {name}: {e.Message}");
            }
            catch (Exception e)
            {
                failed++;
                Console.Error.WriteLine(e);
                Console.WriteLine($"FAIL {name}: {e.GetType().Name}: {Flat(e.Message)}");
            }
            Console.WriteLine($"  ({sw.Elapsed.TotalSeconds:F1}s)");
        }
        return failed > 0 ? 1 : 0;
    }
}
