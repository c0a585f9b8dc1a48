using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Vit;

/// <summary>What loading a ViT checkpoint found beside what the model expected.</summary>
public sealed record VitLoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected);

/// <summary>
/// A ViT model folder as Hugging Face writes it: model.safetensors with HF tensor names and shapes
/// (projection [hidden, C, p, p], [CLS] [1, 1, hidden], ...) and config.json with HF ViT keys.
/// Saving builds the folder beside the target and renames it into place.
/// </summary>
public static class VitCheckpoint
{
    public const string WeightsFile = "model.safetensors";
    public const string ConfigFile = "config.json";

    /// <summary>Saves the folder; with <paramref name="compress"/> the prunable matrices go in sparse-bitmask layout (see <see cref="CompressedCheckpoint"/>).</summary>
    public static void Save(string folder, VitParameters parameters, IReadOnlyDictionary<string, string>? metadata = null,
                            Action<string>? extraFiles = null, bool compress = false)
    {
        AtomicFolder.Write(folder, tmp =>
        {
            var compressed = WriteWeights(Path.Combine(tmp, WeightsFile), parameters, metadata, compress);
            var cfg = parameters.Config.ToJson();
            var heads = parameters.Layout.Heads;
            if (heads.ClassifierLabels > 0)
            {
                cfg["architectures"] = new JsonArray("ViTForImageClassification");
                cfg["num_labels"] = heads.ClassifierLabels;
            }
            else if (heads.MaskedPatches) cfg["architectures"] = new JsonArray("ViTForMaskedImageModeling");
            CompressedCheckpoint.Declare(cfg, compressed);
            File.WriteAllText(Path.Combine(tmp, ConfigFile), CompressedCheckpoint.ToConfigText(cfg));
            extraFiles?.Invoke(tmp);
        });
    }

    public static CompressionSummary? WriteWeights(string path, VitParameters parameters, IReadOnlyDictionary<string, string>? metadata = null, bool compress = false) =>
        CompressedCheckpoint.WriteWeights(path, parameters.Layout.Slots.Select(slot =>
            (slot.Name, parameters[slot.Name], slot.Shape.Select(d => (long)d).ToArray(), slot.Group == ParameterGroup.Prunable)), compress, metadata);

    public static VitConfig ReadConfig(string folder)
    {
        string path = Path.Combine(folder, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no config.json in the checkpoint folder", path);
        return VitConfig.FromJson(File.ReadAllText(path), path);
    }

    /// <summary>The num_labels of a checkpoint's config.json, or 0 when it names none.</summary>
    public static int ReadNumLabels(string folder)
    {
        string path = Path.Combine(folder, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no config.json in the checkpoint folder", path);
        return JsonNode.Parse(File.ReadAllText(path))?["num_labels"] is JsonValue v ? v.GetValue<int>() : 0;
    }

    /// <summary>
    /// Loads every parameter the model has from the folder's model.safetensors (names with or
    /// without HF's "vit." prefix). The embeddings, encoder and final LayerNorm must be present with
    /// the right shapes (a wrong shape is an error naming the tensor); heads absent from the file
    /// keep their initialisation and are listed as missing; tensors the model lacks (another head,
    /// HF's pooler) are listed as unexpected and ignored.
    /// </summary>
    public static VitLoadReport LoadWeights(string folder, VitParameters parameters)
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
            else unexpected.Add(info.Name);
        }
        var loaded = new List<string>();
        var missing = new List<string>();
        foreach (var slot in parameters.Layout.Slots)
        {
            if (!byOurName.TryGetValue(slot.Name, out var fileName)) { missing.Add(slot.Name); continue; }
            var info = file.Get(fileName);
            if (!info.Shape.SequenceEqual(slot.Shape.Select(d => (long)d)))
                throw new InvalidDataException(
                    $"{path}: tensor '{fileName}' has shape [{string.Join(", ", info.Shape)}], the config implies [{string.Join(", ", slot.Shape)}]");
            file.ReadInto(fileName, parameters[slot.Name]);
            loaded.Add(slot.Name);
        }
        var essential = missing.Where(IsBackbone).ToList();
        if (essential.Count > 0)
            throw new InvalidDataException($"{path}: missing {essential.Count} embedding/encoder tensors, first '{essential[0]}'");
        return new VitLoadReport(loaded, missing, unexpected);
    }

    /// <summary>Whether a parameter belongs to the backbone every ViT needs (the mask token belongs to the masked-patch head).</summary>
    public static bool IsBackbone(string name) =>
        name.StartsWith("vit.", StringComparison.Ordinal) && name != VitParameterLayout.MaskToken;

    /// <summary>Maps an HF tensor name to ours: a bare ViTModel checkpoint omits "vit.".</summary>
    public static string Canonical(string name) =>
        name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal)
        || name.StartsWith("layernorm.", StringComparison.Ordinal) || name.StartsWith("pooler.", StringComparison.Ordinal)
            ? "vit." + name : name;

    /// <summary>
    /// Loads a model folder onto a backend with the given heads: every parameter is first
    /// initialised from <paramref name="initSeed"/>, so a head the file lacks (a classifier on an
    /// SSL checkpoint) starts from that seed, then the file's tensors overwrite the rest.
    /// </summary>
    public static (VitParameters Parameters, VitLoadReport Report) Load(string folder, IBackend backend, VitHeads heads, ulong initSeed = 0)
    {
        var cfg = ReadConfig(folder);
        var p = new VitParameters(backend, new VitParameterLayout(cfg, heads));
        try
        {
            p.Initialize(initSeed);
            var report = LoadWeights(folder, p);
            return (p, report);
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }
}
