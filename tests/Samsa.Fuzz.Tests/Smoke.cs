using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Samsa.Fuzz;

/// <summary>The bounded run CI makes: every corpus file of a target, then a fixed number of
/// mutations of them from a fixed Random seed. Crashing inputs are saved under
/// $TMPDIR/samsa-fuzz-crashes/TARGET/ for `run TARGET FILE`.</summary>
public static class Smoke
{
    public sealed record Result(string Target, int Executions, TimeSpan Elapsed, List<string> Failures)
    {
        public int Deep { get; init; }
        public string Summary => $"{Target}: {Executions} inputs in {Elapsed.TotalSeconds:F1} s ({Deep} past the first decode), {Failures.Count} crashes";
    }

    /// <summary>The corpus beside the built assembly (copied there by the project), else in the source tree.</summary>
    public static string CorpusDir(string target)
    {
        string built = Path.Combine(AppContext.BaseDirectory, "corpus", target);
        return Directory.Exists(built) ? built : Path.Combine(SourceDir(), "corpus", target);
    }

    public static string SourceDir([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    public static Result Run(string target, string corpusDir, int mutations, int seed)
    {
        var run = Targets.All[target];
        var corpus = Directory.Exists(corpusDir)
            ? Directory.GetFiles(corpusDir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList()
            : [];
        if (corpus.Count == 0) throw new InvalidOperationException($"no corpus for {target} in {corpusDir}");
        var failures = new List<string>();
        Targets.Deep.TryRemove(target, out _);
        var sw = Stopwatch.StartNew();
        int executions = 0;
        void Execute(byte[] input)
        {
            executions++;
            try
            {
                run(input);
            }
            catch (Exception e)
            {
                string dir = Path.Combine(Path.GetTempPath(), "samsa-fuzz-crashes", target);
                Directory.CreateDirectory(dir);
                string file = Path.Combine(dir, $"crash-{Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(input))[..16]}");
                File.WriteAllBytes(file, input);
                failures.Add($"{e.GetType().Name}: {e.Message} (input saved as {file}, {input.Length} bytes)\n{e.StackTrace}");
            }
        }
        foreach (var input in corpus) Execute(input);
        var mutator = new Mutator(seed);
        for (int i = 0; i < mutations; i++) Execute(mutator.Mutate(corpus[i % corpus.Count], corpus));
        return new Result(target, executions, sw.Elapsed, failures) { Deep = Targets.Deep.GetValueOrDefault(target) };
    }
}
