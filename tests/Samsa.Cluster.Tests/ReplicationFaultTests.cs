using Xunit;

namespace Samsa.Cluster.Tests;

/// <summary>Issue 9's acceptance: with RF=3, acks=all and min.insync.replicas=2, every
/// acknowledged record survives the loss of any one broker — here the partition leader, killed
/// with SIGKILL and restarted, several times in a row.</summary>
public sealed class ReplicationFaultTests(KeeperServer server, ITestOutputHelper output) : IClassFixture<KeeperServer>
{
    [Fact]
    public async Task AcknowledgedRecordsSurviveLeaderKillsExactlyOnceInOrder()
    {
        Assert.SkipWhen(FaultHarness.FindSamsa() is null, "samsa host not built: run ./samsa once");
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("SAMSA_FAULT_SECONDS"), out int s) ? s : 25;
        var report = await FaultRun.RunAsync(server.Address!, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(3), output.WriteLine)
            .WaitAsync(TimeSpan.FromSeconds(seconds + 180));
        output.WriteLine(report.ToString());
        if (Environment.GetEnvironmentVariable("SAMSA_FAULT_REPORT") is { Length: > 0 } path) File.WriteAllText(path, report.ToString());
        Assert.True(report.Kills >= 2, $"only {report.Kills} kills happened");
        Assert.True(report.Acknowledged > 50, $"only {report.Acknowledged} records were acknowledged");
        Assert.Equal(0, report.Lost);
        Assert.Equal(0, report.Duplicated);
        Assert.Equal(0, report.OutOfOrder);
        Assert.Equal(report.Kills, report.FailoverMs.Count);
    }
}
