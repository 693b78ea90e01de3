using SharpFuzz;

namespace Samsa.Fuzz;

/// <summary>
/// Command line of the fuzz project (README.md):
///   afl TARGET              run TARGET under afl-fuzz (SharpFuzz's in-process fork server)
///   smoke [TARGET] [-n N]   replay the corpus and N seeded mutations per target without instrumentation
///   run TARGET FILE...      run TARGET once per file (reproduce a crash)
///   seeds                   (re)write the generated seed files of the corpus
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: afl TARGET | smoke [TARGET] [-n N] | run TARGET FILE... | seeds [DIR]");
            Console.Error.WriteLine("targets: " + string.Join(", ", Targets.All.Keys));
            return 2;
        }
        switch (args[0])
        {
            case "afl":
            {
                var target = Targets.All[args[1]];
                // The Stream is the current test case; an exception escaping the action is reported
                // to afl-fuzz as a crash.
                Fuzzer.Run(stream =>
                {
                    using var ms = new MemoryStream();
                    stream.CopyTo(ms);
                    target(ms.ToArray());
                });
                return 0;
            }
            case "smoke":
            {
                int n = 5000;
                string? only = null;
                for (int i = 1; i < args.Length; i++)
                {
                    if (args[i] == "-n") n = int.Parse(args[++i]);
                    else only = args[i];
                }
                int failures = 0;
                foreach (var name in Targets.All.Keys.Where(k => only is null || k == only))
                {
                    var result = Smoke.Run(name, Smoke.CorpusDir(name), n, seed: 14);
                    Console.WriteLine(result.Summary);
                    foreach (var f in result.Failures.Take(5)) Console.WriteLine("  " + f);
                    failures += result.Failures.Count;
                }
                return failures == 0 ? 0 : 1;
            }
            case "run":
            {
                var target = Targets.All[args[1]];
                int crashes = 0;
                foreach (var file in args.Skip(2))
                {
                    try { target(File.ReadAllBytes(file)); Console.WriteLine($"{file}: ok"); }
                    catch (Exception e) { crashes++; Console.WriteLine($"{file}: {e}"); }
                }
                return crashes == 0 ? 0 : 1;
            }
            case "seeds":
                Seeds.Write(args.Length > 1 ? args[1] : Path.Combine(Smoke.SourceDir(), "corpus"));
                return 0;
            default:
                Console.Error.WriteLine($"unknown command {args[0]}");
                return 2;
        }
    }
}
