using System.CommandLine;
using System.Globalization;
using System.Numerics;
using NativeSparsity.Engine.Backends;

namespace NativeSparsity.Experiments.Commands;

/// <summary>Options shared by every command that runs a model.</summary>
public static class CommonOptions
{
    public static Option<string> Device() => new("--device")
    {
        Description = $"Where to run: {BackendFactory.DeviceOptionHelp}.",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<int> Threads() => new Option<int>("--threads")
    {
        Description = "CPU threads (0: all cores).",
        DefaultValueFactory = _ => 0,
    }.NonNegative();

    public static Option<ulong> Seed() => new("--seed")
    {
        Description = "Seed of every random draw (initialisation, data order, masking, dropout).",
        DefaultValueFactory = _ => 1UL,
    };

    public static Option<string> Preset() => new("--preset")
    {
        Description = "BERT size: tiny (2/128), mini (4/256), small (4/512), medium (8/512), base (12/768), large (24/1024).",
        DefaultValueFactory = _ => "tiny",
    };

    public static Option<string> Batching()
    {
        var option = new Option<string>("--batching")
        {
            Description = "(BERT) How fine-tuning batches are formed: shuffled (random batches, each padded to its own longest row), " +
                          "padded (the same random batches padded to the task's longest example: slower, same batches) or by-length " +
                          "(rows of similar length together: least padding, but not a random sample; it cost accuracy in our measurements).",
            DefaultValueFactory = _ => "shuffled",
        };
        option.AcceptOnlyFromAmong("shuffled", "padded", "by-length");
        return option;
    }

    /// <summary>The value of <see cref="Batching"/>.</summary>
    public static Training.FinetuneBatching ParseBatching(string text) => text switch
    {
        "padded" => Training.FinetuneBatching.Padded,
        "by-length" => Training.FinetuneBatching.ByLength,
        "shuffled" => Training.FinetuneBatching.Shuffled,
        _ => throw new ArgumentException($"--batching must be shuffled, padded or by-length, got '{text}'"),
    };

    // Numeric rules are declared with the option: the validator refuses a bad value with a message naming the
    // option, and the same rule is appended to its --help text, so the two cannot disagree.

    /// <summary>The value must be positive (and finite).</summary>
    public static Option<T> Positive<T>(this Option<T> option) where T : struct, INumber<T> =>
        option.Rule("must be positive", v => v > T.Zero && IsFinite(v));

    /// <summary>For an optional value: when given, it must be positive.</summary>
    public static Option<T?> Positive<T>(this Option<T?> option) where T : struct, INumber<T> =>
        option.Rule("must be positive", v => v is not { } x || (x > T.Zero && IsFinite(x)));

    /// <summary>The value must be 0 or more (and finite); the option's description says what 0 means.</summary>
    public static Option<T> NonNegative<T>(this Option<T> option) where T : struct, INumber<T> =>
        option.Rule("must be 0 or more", v => v >= T.Zero && IsFinite(v));

    /// <summary>The value must lie in the interval written as <paramref name="interval"/>, e.g. "(0, 1]".</summary>
    public static Option<T> Within<T>(this Option<T> option, T low, T high, bool lowOpen = false, bool highOpen = false) where T : struct, INumber<T>
    {
        string interval = string.Create(CultureInfo.InvariantCulture, $"{(lowOpen ? '(' : '[')}{low}, {high}{(highOpen ? ')' : ']')}");
        return option.Rule($"must be in {interval}", v => (lowOpen ? v > low : v >= low) && (highOpen ? v < high : v <= high));
    }

    private static bool IsFinite<T>(T v) where T : INumber<T> => T.IsFinite(v);

    private static Option<T> Rule<T>(this Option<T> option, string rule, Func<T, bool> ok)
    {
        option.Description = $"{option.Description?.TrimEnd()} Value {rule}.".TrimStart();
        option.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<T>();
            if (!ok(v!)) r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} {rule}, got {v}"));
        });
        return option;
    }
}
