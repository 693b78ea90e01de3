using System.Diagnostics;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>`samsa keeper` runs with workstation GC unless DOTNET_gcServer says otherwise
/// (src/Samsa.Host/KeeperRuntimeSettings.cs): the same process (pid) that was started serves,
/// with DOTNET_gcServer=0 in its environment and no server-GC threads.</summary>
public sealed class KeeperGcModeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("samsa-gc-mode-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(null, "0", false)]
    [InlineData("1", "1", true)]
    public async Task Samsa_keeper_chooses_workstation_GC_unless_DOTNET_gcServer_is_set(string? given, string expected, bool serverGcThreads)
    {
        if (!OperatingSystem.IsLinux()) return;
        string data = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        string cfg = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".cfg");
        File.WriteAllText(cfg, $"tickTime=2000\ndataDir={data}\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n");
        var psi = new ProcessStartInfo(Samsa.Testing.TestEnvironment.SamsaExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("keeper");
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(cfg);
        psi.Environment.Remove("DOTNET_gcServer");
        psi.Environment.Remove("COMPlus_gcServer");
        if (given is not null) psi.Environment["DOTNET_gcServer"] = given;
        using var p = Process.Start(psi)!;
        try
        {
            var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            p.OutputDataReceived += (_, e) => { if (e.Data?.StartsWith("keeper listening on ", StringComparison.Ordinal) == true) listening.TrySetResult(); };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var environ = File.ReadAllText($"/proc/{p.Id}/environ").Split('\0');
            Assert.Contains($"DOTNET_gcServer={expected}", environ);
            var threads = Directory.GetDirectories($"/proc/{p.Id}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim()).ToList();
            Assert.Equal(serverGcThreads, threads.Any(t => t.StartsWith(".NET Server GC", StringComparison.Ordinal)));
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
    }
}
