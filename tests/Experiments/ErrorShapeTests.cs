using NativeSparsity.Experiments;
using NativeSparsity.Experiments.Commands;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>The program's one error shape: "error: ..." on one line, exit 2, no stack trace, no .NET boilerplate.</summary>
[NonParallelizable] // redirects Console.Error
public class ErrorShapeTests
{
    private static (int Code, string Err) Capture(Func<int> run)
    {
        var saved = Console.Error;
        var err = new StringWriter();
        Console.SetError(err);
        try { return (run(), err.ToString()); }
        finally { Console.SetError(saved); }
    }

    [Test]
    public void ParameterBoilerplateIsStripped()
    {
        var e = new ArgumentOutOfRangeException("fraction", 0.0, "data fraction must be in (0, 1]");
        Assert.That(e.Message, Does.Contain("Parameter 'fraction'"), "the boilerplate this removes");
        Assert.That(CommandRunner.OneLine(e), Is.EqualTo("data fraction must be in (0, 1]"));
        Assert.That(CommandRunner.OneLine(new ArgumentException("two\nlines", "p")), Is.EqualTo("two lines"));
    }

    [Test]
    public void BadOptionOfABenchIsOneLineAndExitTwo()
    {
        var (code, err) = Capture(() => Program.Main(new[] { "bench", "gemm", "--repeats", "-1" }));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Is.EqualTo("error: --repeats must be positive, got -1"));
    }

    [TestCase(new[] { "pretrain", "--steps", "abc" }, "error: Cannot parse argument 'abc' for option '--steps' as a whole number.")]
    [TestCase(new[] { "pretrain", "--data-fraction", "NaN" }, "error: --data-fraction must be in (0, 1], got NaN")]
    [TestCase(new[] { "finetune", "--lr", "0" }, "error: Option '--checkpoint' is required.\nerror: --lr must be positive, got 0")]
    [TestCase(new[] { "no-such-command" }, "error: Required command was not provided.\nerror: Unrecognized command or argument 'no-such-command'.")]
    public void ABadCommandLineIsErrorLinesAndExitTwo_NotTheHelp(string[] args, string expected)
    {
        var (code, err) = Capture(() => Program.Main(args));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim().ReplaceLineEndings("\n"), Is.EqualTo(expected));
    }

    [Test]
    public void TheRuleOfANumericOptionIsInItsHelp()
    {
        var option = Program.BuildRootCommand().Subcommands.Single(c => c.Name == "pretrain").Options.Single(o => o.Name == "--data-fraction");
        Assert.That(option.Description, Does.EndWith("Value must be in (0, 1]."));
    }

    [Test]
    public void UnexpectedExceptionsAreNamedAsInternalErrors_WithoutATrace()
    {
        var (code, err) = Capture(() => CommandRunner.Run(() => throw new NullReferenceException("boom")));
        Assert.That(code, Is.EqualTo(CommandRunner.InternalErrorExitCode));
        Assert.That(err, Does.Contain("error: internal error (NullReferenceException): boom").And.Not.Contain("   at "));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
        string trace = System.Text.RegularExpressions.Regex.Match(err, @"full trace in (\S+\.txt)").Groups[1].Value;
        Assert.That(File.ReadAllText(trace), Does.Contain("NullReferenceException").And.Contain("   at "));
        File.Delete(trace);
    }
}
