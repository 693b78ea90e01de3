using System.Collections;
using System.Runtime;
using System.Runtime.InteropServices;

namespace Samsa.Host;

/// <summary>
/// The runtime settings `samsa keeper` runs with (issue #19: the Keeper's RSS at most a quarter of
/// Apache ZooKeeper's). The executable's own settings (server GC, which the broker wants: with
/// DATAS its heap stays smaller under the produce/consume load, and consuming was faster) suit the
/// broker; the Keeper's heap is mostly its tree, and workstation GC keeps it 20–25 % smaller
/// (tests/bench/keeper_gc_variants.py; figures in tests/Samsa.Benchmarks/RESULTS.md). The GC mode
/// is fixed before Main runs, so `samsa keeper` started with server GC and no DOTNET_gcServer in
/// its environment replaces itself (execve: same process id, arguments, descriptors) with the
/// same executable and DOTNET_gcServer=0 before doing anything else — one more runtime start
/// (tens of milliseconds). Setting DOTNET_gcServer (1 or 0) chooses the mode and skips this.
/// Only where the executable is samsa itself (the NativeAOT file, or the apphost): under
/// `dotnet samsa.dll` the Keeper keeps server GC.
/// </summary>
internal static partial class KeeperRuntimeSettings
{
    public static void ApplyBeforeStart(string[] args)
    {
        if (!OperatingSystem.IsLinux() || !GCSettings.IsServerGC) return;
        if (Environment.GetEnvironmentVariable("DOTNET_gcServer") is not null || Environment.GetEnvironmentVariable("COMPlus_gcServer") is not null) return;
        string? self = Environment.ProcessPath;
        if (self is null || Path.GetFileName(self) != "samsa") return;
        var env = new List<string>();
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables()) env.Add($"{e.Key}={e.Value}");
        env.Add("DOTNET_gcServer=0");
        var argv = new List<string> { self };
        argv.AddRange(args);
        var pArgv = ToUtf8Array(argv);
        var pEnv = ToUtf8Array(env);
        var pPath = Marshal.StringToCoTaskMemUTF8(self);
        try
        {
            execve(pPath, pArgv, pEnv);
            // only reached when execve failed: carry on with server GC
        }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
        finally
        {
            Marshal.FreeCoTaskMem(pPath);
            foreach (var p in pArgv) Marshal.FreeCoTaskMem(p);
            foreach (var p in pEnv) Marshal.FreeCoTaskMem(p);
        }
    }

    /// <summary>NUL-terminated UTF-8 copies and a null pointer at the end, as execve takes them.</summary>
    private static nint[] ToUtf8Array(List<string> xs)
    {
        var r = new nint[xs.Count + 1];
        for (int i = 0; i < xs.Count; i++) r[i] = Marshal.StringToCoTaskMemUTF8(xs[i]);
        return r;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int execve(nint path, nint[] argv, nint[] envp);
}
