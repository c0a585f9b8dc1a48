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

    public static Option<Training.FinetuneBatching> Batching() => new("--batching")
    {
        Description = "(BERT) How fine-tuning batches are formed: by-length (rows of similar length together, each batch padded to its longest row: " +
                      "least padding), shuffled (random batches, each padded to its longest row) or padded (random batches padded to the task's longest example).",
        DefaultValueFactory = _ => Training.FinetuneBatching.ByLength,
        CustomParser = r =>
        {
            string text = r.Tokens.Count == 1 ? r.Tokens[0].Value : "";
            switch (text)
            {
                case "by-length": return Training.FinetuneBatching.ByLength;
                case "shuffled": return Training.FinetuneBatching.Shuffled;
                case "padded": return Training.FinetuneBatching.Padded;
                default: r.AddError($"--batching must be by-length, shuffled or padded, got '{text}'"); return default;
            }
        },
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
