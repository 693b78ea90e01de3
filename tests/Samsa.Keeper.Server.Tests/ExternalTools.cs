using System.Diagnostics;

namespace Samsa.Keeper.Server.Tests;

/// <summary>Real clients from Debian packages. A test that needs one installs it with apt-get when
/// it is missing, and fails with a message naming the package if that is impossible.</summary>
public static class ExternalTools
{
    public const string Python = "/usr/bin/python3";
    public const string ZkCli = "/usr/share/zookeeper/bin/zkCli.sh";
    public const string CliMt = "/usr/lib/zookeeper/bin/cli_mt";
    public const string ZooKeeperJar = "/usr/share/java/zookeeper.jar";

    private static readonly object Gate = new();

    public static void Require(string package, Func<bool> present)
    {
        lock (Gate)
        {
            if (present()) return;
            Run("apt-get", new[] { "install", "-y", "--no-install-recommends", package }, TimeSpan.FromMinutes(5));
            if (!present())
                throw new InvalidOperationException($"this test needs the Debian package '{package}', which is not installed and could not be installed (apt-get install -y {package})");
        }
    }

    public static void RequireKazoo() => Require("python3-kazoo", () => File.Exists(Python) && Run(Python, new[] { "-c", "import kazoo" }, TimeSpan.FromSeconds(30)).Code == 0);
    public static void RequireZkCli() => Require("zookeeper", () => File.Exists(ZkCli) && File.Exists(ZooKeeperJar));
    public static void RequireCliMt() => Require("zookeeper-bin", () => File.Exists(CliMt));

    /// <summary>node-zookeeper-client 1.1.3 from npm, installed once into a shared temp directory.</summary>
    public static string RequireNodeZookeeperClient()
    {
        Require("nodejs", () => Which("node") is not null);
        Require("npm", () => Which("npm") is not null);
        string dir = Path.Combine(Path.GetTempPath(), "samsa-keeper-npm");
        lock (Gate)
        {
            if (!Directory.Exists(Path.Combine(dir, "node_modules", "node-zookeeper-client")))
            {
                Directory.CreateDirectory(dir);
                var (code, o, e) = Run(Which("npm")!, new[] { "install", "--prefix", dir, "node-zookeeper-client@1.1.3" }, TimeSpan.FromMinutes(5));
                if (code != 0) throw new InvalidOperationException("npm install node-zookeeper-client@1.1.3 failed: " + o + e);
            }
        }
        return dir;
    }

    public static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    public static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args, TimeSpan timeout, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin is not null) { p.StandardInput.Write(stdin); p.StandardInput.Close(); }
        if (!p.WaitForExit(timeout))
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{file} did not finish within {timeout}: {o.Result}{e.Result}");
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    public static (int Code, string Out, string Err) RunPython(string script, params string[] args)
    {
        string path = Path.Combine(Path.GetTempPath(), "keeper-" + Guid.NewGuid().ToString("N") + ".py");
        File.WriteAllText(path, script);
        try { return Run(Python, new[] { path }.Concat(args), TimeSpan.FromSeconds(90)); }
        finally { File.Delete(path); }
    }
}
