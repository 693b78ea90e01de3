using System.Diagnostics;

namespace Samsa.Host;

/// <summary>SAMSA_STARTUP_TRACE=1: one stderr line per start-up phase of `samsa dev` with the
/// milliseconds since the process started (runtime start-up included) and the CPU time used so
/// far, to see where the time to `kafka listening` goes (issue #18). Off, it costs one
/// environment read.</summary>
internal static class StartupTrace
{
    private static readonly bool On = Environment.GetEnvironmentVariable("SAMSA_STARTUP_TRACE") == "1";

    public static void Mark(string phase)
    {
        if (!On) return;
        using var self = Process.GetCurrentProcess();
        double sinceStart = (DateTime.Now - self.StartTime).TotalMilliseconds;
        Console.Error.WriteLine($"startup: {phase} at {sinceStart:F0} ms, CPU {self.TotalProcessorTime.TotalMilliseconds:F0} ms");
    }
}
