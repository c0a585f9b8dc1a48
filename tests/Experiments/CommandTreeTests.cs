using System.CommandLine;
using System.Text;
using NativeSparsity.Experiments;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>
/// Walks the parser's own command tree (so a new command or option is covered without editing this
/// test) and tries bad values on every numeric option (0, -1, NaN, a huge value, a non-number) and
/// path option (a missing path, an empty file, an empty folder), each on top of a tiny valid command
/// line so that an accepted value runs briefly. Every run must end with exit 0 or 2 (3: training
/// diverged, for a huge learning rate) and print no stack trace and no .NET boilerplate.
/// "Huge" is 1e30 for real-valued options and 10^20, beyond every integer type, for whole-number ones.
/// </summary>
[NonParallelizable] // redirects Console
public class CommandTreeTests
{
    private string _dir = null!;
    private string _checkpoint = null!;
    private int _runs;

    private static readonly string[] NumericValues = { "0", "-1", "NaN", "HUGE", "abc" };
    private static readonly Type[] Numeric = { typeof(int), typeof(long), typeof(float), typeof(double), typeof(ulong) };

    /// <summary>Options and arguments whose value is a file or folder (the rest of the string options are names and lists).</summary>
    private static readonly HashSet<string> PathOptions = new(StringComparer.Ordinal)
    {
        "--out", "--data", "--cache", "--checkpoint", "--vocab", "--glue-dir", "--pretrain-out", "--data-dir", "--mask", "--save-mask", "--file",
        "dir", "checkpoint", "model",
    };

    [OneTimeSetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-tree-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, "empty-file"), "");
        Directory.CreateDirectory(Path.Combine(_dir, "empty-folder"));
        var (code, _, err) = Run("pretrain", "--threads", "1", "--layers", "1", "--hidden", "64", "--vocab-size", "512", "--steps", "2", "--batch-size", "2",
                                 "--seq-len", "16", "--probe-every", "0", "--checkpoint-every", "2", "--cache", Path.Combine(_dir, "cache"), "--out", Path.Combine(_dir, "base"));
        Assert.That(code, Is.EqualTo(0), err);
        _checkpoint = Path.Combine(_dir, "base", "checkpoints", "step-0000002");
    }

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>A tiny valid command line per command (what each tried value replaces), by command path.</summary>
    private Dictionary<string, string> BaseOptions(string path)
    {
        string cache = Path.Combine(_dir, "cache");
        var tinyBert = new Dictionary<string, string>
        {
            ["--threads"] = "1", ["--layers"] = "1", ["--hidden"] = "64", ["--vocab-size"] = "512", ["--steps"] = "2", ["--batch-size"] = "2",
            ["--seq-len"] = "16", ["--probe-every"] = "1", ["--probe-batches"] = "1", ["--checkpoint-every"] = "1", ["--cache"] = cache,
        };
        var tinyStudy = new Dictionary<string, string>
        {
            ["--threads"] = "1", ["--checkpoint"] = _checkpoint, ["--tasks"] = "antonym", ["--seeds"] = "1", ["--epochs"] = "1", ["--max-examples"] = "8",
            ["--max-steps"] = "1", ["--batch-size"] = "4", ["--max-seq-len"] = "16", ["--levels"] = "0.5", ["--cache"] = cache,
        };
        return path switch
        {
            "pretrain" => tinyBert,
            "study abrupt" => new(tinyBert) { ["--data-fractions"] = "1.0", ["--omp-every"] = "0" },
            "study ssl-vs-sl" => new(tinyBert) { ["--max-examples"] = "8", ["--sl-probe-batches"] = "1" },
            "study essential" => tinyStudy,
            "study nm" => new(tinyStudy) { ["--patterns"] = "2:4" },
            "study lottery" => new(tinyStudy) { ["--prune-rate"] = "0.5" },
            "finetune" => new() { ["--threads"] = "1", ["--checkpoint"] = _checkpoint, ["--task"] = "antonym", ["--epochs"] = "1", ["--max-examples"] = "8",
                                  ["--max-steps"] = "1", ["--batch-size"] = "4", ["--max-seq-len"] = "16" },
            "inspect" => new() { ["dir"] = _checkpoint },
            "compress" or "decompress" => new() { ["checkpoint"] = _checkpoint },
            "fill-mask" => new() { ["text"] = "a [MASK] of words", ["--checkpoint"] = _checkpoint },
            "embed" => new() { ["text"] = "a few words", ["--checkpoint"] = _checkpoint, ["--pooling"] = "mean", ["--threads"] = "1" },
            "import onnx" => new() { ["model"] = Path.Combine(_dir, "missing.onnx"), ["--vocab"] = Path.Combine(_dir, "missing.txt") },
            "bench threshold" => new() { ["--n"] = "1000", ["--repeats"] = "1", ["--sort-repeats"] = "1", ["--large"] = "false", ["--threads"] = "1" },
            "bench gemm" or "bench sparse" => new() { ["--only"] = "no-such-shape", ["--threads"] = "1", ["--repeats"] = "1" },
            "bench infer" => new() { ["--preset"] = "tiny", ["--batch"] = "1", ["--seq"] = "8", ["--repeats"] = "1", ["--sparsities"] = "0.5", ["--threads"] = "1" },
            "bench sparse-step" => new() { ["--checkpoint"] = _checkpoint, ["--sparsities"] = "0.5", ["--batch"] = "2", ["--seq"] = "8", ["--repeats"] = "1", ["--threads"] = "1" },
            "bench finetune" => new() { ["--checkpoint"] = _checkpoint, ["--task"] = "antonym", ["--max-examples"] = "8", ["--batch-size"] = "4",
                                        ["--max-seq-len"] = "16", ["--steps"] = "1", ["--batching"] = "shuffled", ["--threads"] = "1" },
            "bench train" => new() { ["--preset"] = "tiny", ["--batch-size"] = "2", ["--seq-len"] = "16", ["--vocab-size"] = "512", ["--steps"] = "1", ["--threads"] = "1" },
            _ => new(),
        };
    }

    private static IEnumerable<(string Path, Command Command)> Leaves(Command c, string path)
    {
        if (c.Action != null) yield return (path, c);
        foreach (var sub in c.Subcommands)
            foreach (var leaf in Leaves(sub, path.Length == 0 ? sub.Name : $"{path} {sub.Name}"))
                yield return leaf;
    }

    private (int Code, string Out, string Err) Run(params string[] args)
    {
        _runs++;
        TextWriter savedOut = Console.Out, savedErr = Console.Error;
        var output = new StringWriter();
        var err = new StringWriter();
        Console.SetOut(output);
        Console.SetError(err);
        try { return (Program.Main(args), output.ToString(), err.ToString()); }
        finally { Console.SetOut(savedOut); Console.SetError(savedErr); }
    }

    [Test]
    public void EveryNumericAndPathOptionRefusesBadValuesCleanly()
    {
        var failures = new StringBuilder();
        var leaves = Leaves(Program.BuildRootCommand(), "").ToList();
        Assert.That(leaves.Select(l => l.Path), Has.Member("pretrain").And.Member("study essential").And.Member("bench gemm"));
        int tried = 0;
        foreach (var (path, command) in leaves)
        {
            var cases = new List<(string Name, string Value)>();
            foreach (var option in command.Options)
            {
                var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
                if (Numeric.Contains(type))
                    cases.AddRange(NumericValues.Select(v => (option.Name, v == "HUGE" ? (type == typeof(float) || type == typeof(double) ? "1e30" : "100000000000000000000") : v)));
                else if (type == typeof(string) && PathOptions.Contains(option.Name))
                    cases.AddRange(BadPaths().Select(p => (option.Name, p)));
            }
            foreach (var argument in command.Arguments)
                if (PathOptions.Contains(argument.Name))
                    cases.AddRange(BadPaths().Select(p => (argument.Name, p)));
            foreach (var (name, value) in cases)
            {
                var options = BaseOptions(path);
                // Every run writes into a fresh folder (a study or pretrain refuses to continue someone else's).
                if (command.Options.Any(o => o.Name == "--out")) options.TryAdd("--out", Path.Combine(_dir, "runs", $"r{_runs}"));
                options[name] = value;
                var args = new List<string>(path.Split(' '));
                foreach (var argument in command.Arguments)
                    if (options.TryGetValue(argument.Name, out var a)) args.Add(a);
                foreach (var (key, v) in options)
                    if (key.StartsWith('-')) { args.Add(key); args.Add(v); }
                var (code, _, err) = Run(args.ToArray());
                tried++;
                string line = $"nsparse {string.Join(" ", args)}";
                if (code is not (0 or 2 or 3)) failures.AppendLine($"{line}\n  exit {code}: {err.Trim()}");
                else if (err.Contains("   at ") || err.Contains("Exception") || err.Contains("(Parameter '") || err.Contains("Actual value was") || err.Contains("System."))
                    failures.AppendLine($"{line}\n  boilerplate or trace: {err.Trim()}");
                else if (code == 2 && !err.Split('\n').Any(l => l.StartsWith("error: ", StringComparison.Ordinal)))
                    failures.AppendLine($"{line}\n  exit 2 without an 'error:' line: {err.Trim()}");
            }
        }
        TestContext.Out.WriteLine($"{tried} command lines over {leaves.Count} commands");
        Assert.That(failures.ToString(), Is.Empty);
    }

    private IEnumerable<string> BadPaths() =>
        new[] { Path.Combine(_dir, "missing", "path"), Path.Combine(_dir, "empty-file"), Path.Combine(_dir, "empty-folder") };
}
