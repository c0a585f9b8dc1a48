using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Transformer;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>What loading a checkpoint found beside what the model expected.</summary>
public sealed record BertLoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected)
{
    /// <summary>One line naming the modules initialised fresh because the checkpoint lacks them, or null when nothing is.</summary>
    public string? FreshLine() => DescribeFresh(Missing);

    public static string? DescribeFresh(IReadOnlyList<string> missing)
    {
        if (missing.Count == 0) return null;
        // "bert.pooler.dense.weight", "bert.pooler.dense.bias" -> "bert.pooler.dense"
        var modules = missing.Select(n => n.LastIndexOf('.') is int i and > 0 ? n[..i] : n).Distinct().ToList();
        return $"initialised fresh (not in the checkpoint): {string.Join(", ", modules)}";
    }
}

/// <summary>
/// A model folder as Hugging Face writes it: model.safetensors with HF tensor names and config.json
/// with HF BERT keys. Saving builds the folder beside the target and renames it into place, so a
/// crash never leaves half a checkpoint; `extraFiles` adds the vocabulary, optimizer state, etc.
/// </summary>
public static class BertCheckpoint
{
    public const string WeightsFile = "model.safetensors";
    public const string ConfigFile = "config.json";

    /// <summary>Saves the folder; with <paramref name="compress"/> the prunable matrices go in sparse-bitmask layout (see <see cref="CompressedCheckpoint"/>).</summary>
    public static void Save(string folder, BertParameters parameters, IReadOnlyDictionary<string, string>? metadata = null,
                            Action<string>? extraFiles = null, bool compress = false)
    {
        AtomicFolder.Write(folder, tmp =>
        {
            var compressed = WriteWeights(Path.Combine(tmp, WeightsFile), parameters, metadata, compress);
            var cfg = parameters.Config.ToJson();
            var heads = parameters.Layout.Heads;
            if (heads.ClassifierLabels > 0)
            {
                cfg["architectures"] = new System.Text.Json.Nodes.JsonArray("BertForSequenceClassification");
                cfg["num_labels"] = heads.ClassifierLabels;
                if (heads.ClassifierLabels == 1) cfg["problem_type"] = "regression";
            }
            else if (!heads.MaskedLm && !heads.NextSentence)
                cfg["architectures"] = new System.Text.Json.Nodes.JsonArray("BertModel"); // an encoder with no head (an imported export)
            CompressedCheckpoint.Declare(cfg, compressed);
            File.WriteAllText(Path.Combine(tmp, ConfigFile), CompressedCheckpoint.ToConfigText(cfg));
            extraFiles?.Invoke(tmp);
        });
    }

    public static CompressionSummary? WriteWeights(string path, BertParameters parameters, IReadOnlyDictionary<string, string>? metadata = null, bool compress = false)
    {
        // A model with no head is saved as HF's BertModel saves itself: names without the "bert." prefix.
        var heads = parameters.Layout.Heads;
        bool bare = !heads.MaskedLm && !heads.NextSentence && heads.ClassifierLabels == 0;
        return CompressedCheckpoint.WriteWeights(path, parameters.Layout.Slots.Select(slot =>
            (bare && slot.Name.StartsWith("bert.", StringComparison.Ordinal) ? slot.Name["bert.".Length..] : slot.Name,
             parameters[slot.Name], slot.Shape.Select(d => (long)d).ToArray(), slot.Group == ParameterGroup.Prunable)), compress, metadata);
    }

    public static BertConfig ReadConfig(string folder)
    {
        string path = Path.Combine(folder, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no config.json in the checkpoint folder", path);
        return BertConfig.FromJson(File.ReadAllText(path), path);
    }

    /// <summary>
    /// Loads every parameter the model has from the folder's model.safetensors. Accepts HF's
    /// variants: names with or without the "bert." prefix, old LayerNorm "gamma"/"beta" names, the
    /// tied decoder weight/bias (checked, not loaded). Encoder and embedding tensors must be present
    /// with the right shapes; missing heads are left as initialised and listed in the report.
    /// </summary>
    public static BertLoadReport LoadWeights(string folder, BertParameters parameters)
    {
        string path = Path.Combine(folder, WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no model.safetensors in the checkpoint folder", path);
        using var file = SafetensorsFile.Open(path);
        var byOurName = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        foreach (var info in file.Tensors)
        {
            string ours = Canonical(info.Name);
            if (parameters.Layout.Contains(ours)) byOurName[ours] = info.Name;
            else if (!IsTiedOrBuffer(ours)) unexpected.Add(info.Name);
        }
        var loaded = new List<string>();
        var missing = new List<string>();
        foreach (var slot in parameters.Layout.Slots)
        {
            if (!byOurName.TryGetValue(slot.Name, out var fileName))
            {
                missing.Add(slot.Name);
                continue;
            }
            var info = file.Get(fileName);
            if (!info.Shape.SequenceEqual(slot.Shape.Select(d => (long)d)))
                throw new InvalidDataException(
                    $"{path}: tensor '{fileName}' has shape [{string.Join(", ", info.Shape)}], the config implies [{string.Join(", ", slot.Shape)}]");
            file.ReadInto(fileName, parameters[slot.Name]);
            loaded.Add(slot.Name);
        }
        var essential = missing.Where(n => n.StartsWith("bert.embeddings.", StringComparison.Ordinal) || n.StartsWith("bert.encoder.", StringComparison.Ordinal)).ToList();
        if (essential.Count > 0)
            throw new InvalidDataException($"{path}: missing {essential.Count} encoder/embedding tensors, first '{essential[0]}'");
        return new BertLoadReport(loaded, missing, unexpected);
    }

    /// <summary>The parameters a model with <paramref name="heads"/> has that the folder's model.safetensors lacks (read from its header only).</summary>
    public static IReadOnlyList<string> MissingFor(string folder, BertHeads heads)
    {
        string path = Path.Combine(folder, WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no model.safetensors in the checkpoint folder", path);
        using var file = SafetensorsFile.Open(path);
        var present = file.Tensors.Select(t => Canonical(t.Name)).ToHashSet(StringComparer.Ordinal);
        return new BertParameterLayout(ReadConfig(folder), heads).Slots.Select(s => s.Name).Where(n => !present.Contains(n)).ToList();
    }

    /// <summary>Maps an HF tensor name to ours (BertModel checkpoints omit "bert."; old ones say gamma/beta).</summary>
    public static string Canonical(string name)
    {
        string n = name.Replace("LayerNorm.gamma", "LayerNorm.weight").Replace("LayerNorm.beta", "LayerNorm.bias");
        if (n.StartsWith("embeddings.", StringComparison.Ordinal) || n.StartsWith("encoder.", StringComparison.Ordinal) || n.StartsWith("pooler.", StringComparison.Ordinal))
            n = "bert." + n;
        return n;
    }

    private static bool IsTiedOrBuffer(string name) =>
        name is "cls.predictions.decoder.weight" or "cls.predictions.decoder.bias"
        || name.EndsWith("position_ids", StringComparison.Ordinal)
        || name.EndsWith("token_type_ids", StringComparison.Ordinal);

    /// <summary>Loads a whole model folder (config + weights) onto a backend.</summary>
    public static (BertParameters Parameters, BertLoadReport Report) Load(string folder, NativeSparsity.Engine.Backends.IBackend backend, BertHeads heads, ulong initSeed = 0)
    {
        var cfg = ReadConfig(folder);
        var p = new BertParameters(backend, new BertParameterLayout(cfg, heads));
        p.Initialize(initSeed);   // heads absent from the file keep a proper initialisation
        var report = LoadWeights(folder, p);
        return (p, report);
    }
}
