using Xunit;

namespace Samsa.Fuzz;

/// <summary>
/// CI's bounded fuzz run (issue 14): each target replays its checked-in corpus — seeds captured
/// from librdkafka, kafkajs and kafka-python, hand-made jute conversations, and every input that
/// once crashed — then a few thousand deterministic mutations. Any exception a target does not
/// document as "bad input" fails the test with the input saved for `run TARGET FILE`.
/// </summary>
public class SmokeTests
{
    [Theory]
    [InlineData("kafka-request", 100_000)]
    [InlineData("kafka-handler", 50_000)]
    [InlineData("produce-validator", 100_000)]
    [InlineData("decompress", 50_000)]
    [InlineData("jute-request", 100_000)]
    [InlineData("keeper-server", 30_000)]
    [InlineData("segment-recovery", 3_000)]
    [InlineData("txnlog-recovery", 3_000)]
    public void CorpusAndMutationsRunWithoutCrashes(string target, int mutations)
    {
        var result = Smoke.Run(target, Smoke.CorpusDir(target), mutations, seed: 14);
        Assert.True(result.Failures.Count == 0, result.Summary + "\n" + string.Join("\n\n", result.Failures.Take(3)));
        Assert.Equal(mutations + Directory.GetFiles(Smoke.CorpusDir(target)).Length, result.Executions);
    }

    [Fact]
    public void EveryTargetHasACorpus()
    {
        foreach (var target in Targets.All.Keys)
            Assert.True(Directory.GetFiles(Smoke.CorpusDir(target)).Length >= 3, $"{target} has fewer than 3 corpus files");
    }
}
