using NativeSparsity.Experiments.Training;

namespace NativeSparsity.Experiments.Commands;

/// <summary>
/// The one error shape of the program: an expected failure is one line "error: ..." on stderr and an
/// exit code (2 bad input or state, 3 training diverged), never a stack trace or .NET's parameter
/// boilerplate; anything else is an internal error: one line naming the file its trace was written
/// to, exit code 70 (the trace also on stderr with NSPARSE_DEBUG=1).
/// </summary>
public static class CommandRunner
{
    /// <summary>EX_SOFTWARE of sysexits.h: the program, not the input, is at fault.</summary>
    public const int InternalErrorExitCode = 70;

    public static int Run(Action body)
    {
        try
        {
            body();
            return 0;
        }
        catch (Exception e)
        {
            return Report(e);
        }
    }

    /// <summary>Prints <paramref name="e"/> in the program's error shape and returns the exit code.</summary>
    public static int Report(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException != null)
            e = e.InnerException!;
        if (e is TrainingDivergedException)
        {
            Console.Error.WriteLine($"\nerror: {e.Message}");
            return 3;
        }
        if (e is ArgumentException or InvalidDataException or InvalidOperationException or IOException or NotSupportedException
                or UnauthorizedAccessException or FormatException
            || e.GetType().Name.StartsWith("Cuda", StringComparison.Ordinal) || e.GetType().Name.Contains("Safetensors"))
        {
            Console.Error.WriteLine($"\nerror: {OneLine(e)}");
            return 2;
        }
        string trace = Path.Combine(Path.GetTempPath(), $"nsparse-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
        string where;
        try { File.WriteAllText(trace, e.ToString()); where = $"full trace in {trace}"; }
        catch (Exception) { where = "the trace could not be written"; }
        Console.Error.WriteLine($"\nerror: internal error ({e.GetType().Name}): {OneLine(e)} (a bug; {where})");
        if (Environment.GetEnvironmentVariable("NSPARSE_DEBUG") == "1") Console.Error.WriteLine(e);
        return InternalErrorExitCode;
    }

    /// <summary>The message without .NET's " (Parameter 'x')" and "Actual value was ..." suffixes, on one line.</summary>
    public static string OneLine(Exception e)
    {
        string m = e.Message;
        if (e is ArgumentException { ParamName: { } p })
        {
            int at = m.IndexOf($" (Parameter '{p}')", StringComparison.Ordinal);
            if (at >= 0) m = m[..at];
        }
        int actual = m.IndexOf("Actual value was", StringComparison.Ordinal);
        if (actual >= 0) m = m[..actual];
        return PlainTypes(string.Join(" ", m.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
    }

    /// <summary>
    /// A value that does not parse, without .NET's type names: "as expected type 'System.Int64'" becomes
    /// "as a whole number" (System.CommandLine reports these when the command reads the value).
    /// </summary>
    public static string PlainTypes(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, @"as expected type '([^']*)'", m => m.Groups[1].Value switch
        {
            var t when t.Contains("Int", StringComparison.Ordinal) => "as a whole number",
            var t when t.Contains("Single", StringComparison.Ordinal) || t.Contains("Double", StringComparison.Ordinal) => "as a number",
            var t when t.Contains("Boolean", StringComparison.Ordinal) => "as true or false",
            _ => m.Value,
        });
}
