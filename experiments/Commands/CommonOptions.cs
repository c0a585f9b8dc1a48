using System.CommandLine;
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

    public static Option<int> Threads() => new("--threads")
    {
        Description = "CPU threads (0: all cores).",
        DefaultValueFactory = _ => 0,
    };

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

    /// <summary>Adds validators that turn a bad value into a message naming the option.</summary>
    public static Option<T> Positive<T>(this Option<T> option) where T : IComparable<T>
    {
        option.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<T>();
            if (v is null || v.CompareTo(default!) <= 0) r.AddError($"{option.Name} must be positive, got {v}");
        });
        return option;
    }
}
