using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Vit;

namespace NativeSparsity.Models.Transformer;

/// <summary>What a compressed save stored: the matrices in sparse-bitmask layout and their kept values.</summary>
public sealed record CompressionSummary(IReadOnlyList<string> Targets, long Kept, long Total)
{
    public double Sparsity => Total == 0 ? 0 : 1 - (double)Kept / Total;
}

/// <summary>
/// Checkpoint folders whose prunable matrices are stored in compressed-tensors' sparse-bitmask
/// layout (see <see cref="SparseBitmask"/>), with the compression declared in config.json the way
/// compressed-tensors writes it: "quantization_config": {"quant_method": "compressed-tensors",
/// "sparsity_config": {"format": "sparse-bitmask", "global_sparsity" (percent), "sparsity_structure":
/// "unstructured", "targets" (the compressed module names), "ignore", "registry_requires_subclass"}}.
/// Reading needs nothing from here: <see cref="SafetensorsFile"/> decodes such files transparently.
/// </summary>
public static class CompressedCheckpoint
{
    public const string ConfigKey = "quantization_config";
    public const string QuantMethod = "compressed-tensors";

    /// <summary>
    /// Writes a weights file of named tensors; those flagged prunable go in sparse-bitmask layout
    /// when <paramref name="compress"/> is set. Returns what was compressed (null when nothing was).
    /// </summary>
    public static CompressionSummary? WriteWeights(string path, IEnumerable<(string Name, Tensor Tensor, long[] Shape, bool Prunable)> tensors,
                                                   bool compress, IReadOnlyDictionary<string, string>? metadata)
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        if (metadata != null) foreach (var (k, v) in metadata) writer.SetMetadata(k, v);
        var targets = new List<string>();
        long kept = 0, total = 0;
        foreach (var (name, tensor, shape, prunable) in tensors)
        {
            if (compress && prunable && shape.Length == 2)
            {
                kept += writer.AddSparseBitmask(name, tensor, shape[0], shape[1]);
                total += shape[0] * shape[1];
                targets.Add(SparseBitmask.PrefixOf(name));
            }
            else writer.Add(name, tensor, shape);
        }
        writer.Write(path);
        return targets.Count == 0 ? null : new CompressionSummary(targets, kept, total);
    }

    /// <summary>Declares (or, given null, removes) the sparse-bitmask compression in a config.json object.</summary>
    public static void Declare(JsonObject config, CompressionSummary? summary)
    {
        if (summary == null)
        {
            if (config[ConfigKey] is JsonObject q)
            {
                q.Remove("sparsity_config");
                // Nothing but our declaration left: drop the key, so a decompressed copy matches the original.
                if (q.All(kv => kv.Key is "quant_method" or "version" or "transform_config")) config.Remove(ConfigKey);
            }
            return;
        }
        var quant = config[ConfigKey] as JsonObject ?? new JsonObject();
        quant["quant_method"] = QuantMethod;
        quant["sparsity_config"] = new JsonObject
        {
            ["format"] = SparseBitmask.FormatName,
            ["global_sparsity"] = 100 * summary.Sparsity,
            ["ignore"] = new JsonArray(),
            ["registry_requires_subclass"] = false,
            ["sparsity_structure"] = "unstructured",
            ["targets"] = new JsonArray(summary.Targets.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
        };
        config[ConfigKey] = quant;
    }

    public static string ToConfigText(JsonObject config) => config.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>
    /// Copies a checkpoint folder to <paramref name="target"/> (atomically) with its prunable
    /// matrices in sparse-bitmask layout (<paramref name="compress"/>) or every tensor dense. The
    /// other tensors, their dtypes, the file metadata and every other file are copied unchanged,
    /// so compressing and then decompressing one of our checkpoints gives it back byte for byte.
    /// </summary>
    public static CompressionSummary? Rewrite(string source, string target, bool compress)
    {
        string weights = Path.Combine(source, BertCheckpoint.WeightsFile), configPath = Path.Combine(source, BertCheckpoint.ConfigFile);
        if (!File.Exists(weights)) throw new FileNotFoundException($"{weights}: no model.safetensors in the checkpoint folder", weights);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{configPath}: no config.json in the checkpoint folder", configPath);
        if (Path.GetFullPath(source).TrimEnd('/') == Path.GetFullPath(target).TrimEnd('/'))
            throw new ArgumentException($"--out '{target}' is the checkpoint itself; write to another folder");
        string configText = File.ReadAllText(configPath);
        var config = JsonNode.Parse(configText) as JsonObject ?? throw new InvalidDataException($"{configPath}: not a JSON object");
        var isPrunable = PrunableNames(config, configText, configPath);
        CompressionSummary? summary = null;
        using var file = SafetensorsFile.Open(weights);
        AtomicFolder.Write(target, tmp =>
        {
            var writer = new SafetensorsWriter();
            foreach (var (k, v) in file.Metadata) writer.SetMetadata(k, v);
            var targets = new List<string>();
            long kept = 0, total = 0;
            foreach (var t in file.Tensors)
            {
                string name = t.Name;
                void Read(long start, Span<byte> dst) => file.ReadRaw(name, start, dst);
                if (compress && t.Shape.Length == 2 && isPrunable(name))
                {
                    kept += writer.AddSparseBitmask(name, t.DType, t.Shape[0], t.Shape[1], Read);
                    total += t.ElementCount;
                    targets.Add(SparseBitmask.PrefixOf(name));
                }
                else writer.Add(name, t.DType, t.Shape, Read);
            }
            writer.Write(Path.Combine(tmp, BertCheckpoint.WeightsFile));
            summary = targets.Count == 0 ? null : new CompressionSummary(targets, kept, total);
            Declare(config, summary);
            File.WriteAllText(Path.Combine(tmp, BertCheckpoint.ConfigFile), ToConfigText(config));
            foreach (var other in Directory.EnumerateFiles(source))
            {
                string leaf = Path.GetFileName(other);
                if (leaf is not (BertCheckpoint.WeightsFile or BertCheckpoint.ConfigFile)) File.Copy(other, Path.Combine(tmp, leaf));
            }
        });
        return summary;
    }

    /// <summary>Which file tensor names are prunable matrices, by the model config.json describes (BERT or ViT).</summary>
    private static Func<string, bool> PrunableNames(JsonObject config, string configText, string configPath)
    {
        bool vit = config["model_type"] is JsonValue v && v.TryGetValue(out string? type) && type == "vit";
        if (vit)
        {
            var layout = new VitParameterLayout(VitConfig.FromJson(configText, configPath), new VitHeads());
            var names = layout.PrunableMatrices.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
            return n => names.Contains(VitCheckpoint.Canonical(n));
        }
        var bert = new BertParameterLayout(BertConfig.FromJson(configText, configPath), BertHeads.PreTraining);
        var bertNames = bert.PrunableMatrices.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        return n => bertNames.Contains(BertCheckpoint.Canonical(n));
    }

    /// <summary>
    /// A checkpoint's weights file: its size on disk, with every tensor dense, and with the
    /// prunable matrices in sparse-bitmask layout (counting their non-zero elements).
    /// </summary>
    public static (long OnDisk, long Dense, long Compressed, int StoredCompressed) MeasureSizes(string folder)
    {
        string weights = Path.Combine(folder, BertCheckpoint.WeightsFile), configPath = Path.Combine(folder, BertCheckpoint.ConfigFile);
        string configText = File.ReadAllText(configPath);
        var config = JsonNode.Parse(configText) as JsonObject ?? throw new InvalidDataException($"{configPath}: not a JSON object");
        var isPrunable = PrunableNames(config, configText, configPath);
        using var file = SafetensorsFile.Open(weights);
        long header = file.DataStart, dense = header, compressed = header;
        foreach (var t in file.Tensors)
        {
            dense += t.ByteLength;
            if (t.Shape.Length != 2 || !isPrunable(t.Name)) { compressed += t.ByteLength; continue; }
            int size = t.DType.SizeInBytes();
            long kept = t.Compressed?.Kept ?? CountKept(file, t);
            compressed += SparseBitmask.StoredBytes(t.Shape[0], t.Shape[1], kept, size);
        }
        return (new FileInfo(weights).Length, dense, compressed, file.Tensors.Count(t => t.Compressed != null));
    }

    private static long CountKept(SafetensorsFile file, SafetensorsTensorInfo t)
    {
        long cols = t.Shape[1], kept = 0;
        int size = t.DType.SizeInBytes();
        var raw = new byte[cols * size];
        var mask = new byte[SparseBitmask.BytesPerRow(cols)];
        var count = new long[1];
        for (long r = 0; r < t.Shape[0]; r++)
        {
            file.ReadRaw(t.Name, r * cols, raw);
            SparseBitmask.EncodeRows(raw, size, cols, mask, count);
            kept += count[0];
        }
        return kept;
    }

    /// <summary>The bytes a set of matrices would take in sparse-bitmask layout, F32 values, counting kept (non-zero-bit) elements.</summary>
    public static long CompressedBytes(IEnumerable<(long Rows, long Cols, long Kept)> matrices) =>
        matrices.Sum(m => SparseBitmask.StoredBytes(m.Rows, m.Cols, m.Kept, sizeof(float)));

    public static string FormatBytes(long bytes) => bytes >= 1 << 20
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:F1} MiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB");
}
