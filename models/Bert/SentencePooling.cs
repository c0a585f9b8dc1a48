using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Models.Bert;

/// <summary>How a sentence embedding is made from the last hidden states.</summary>
public enum PoolingMode { Mean, Cls }

/// <summary>
/// A checkpoint's sentence-transformers settings, in sentence-transformers' own files:
/// 1_Pooling/config.json (pooling_mode_mean_tokens / pooling_mode_cls_token) and
/// sentence_bert_config.json (max_seq_length). Pooling: mean over the tokens the attention mask
/// keeps, or the [CLS] token's state; the embedding is then L2-normalised.
/// </summary>
public static class SentencePooling
{
    public const string PoolingConfigFile = "1_Pooling/config.json";
    public const string SentenceConfigFile = "sentence_bert_config.json";

    public static PoolingMode Parse(string text) => text.ToLowerInvariant() switch
    {
        "mean" => PoolingMode.Mean,
        "cls" => PoolingMode.Cls,
        _ => throw new ArgumentException($"pooling: expected mean or cls, got '{text}'"),
    };

    public static string Name(PoolingMode mode) => mode == PoolingMode.Mean ? "mean" : "cls";

    /// <summary>The folder's pooling, or null when it has no 1_Pooling/config.json.</summary>
    public static PoolingMode? ReadPooling(string folder)
    {
        string path = Path.Combine(folder, PoolingConfigFile);
        if (!File.Exists(path)) return null;
        var o = ReadObject(path);
        bool Flag(string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out bool b) && b;
        bool mean = Flag("pooling_mode_mean_tokens"), cls = Flag("pooling_mode_cls_token");
        var others = new[] { "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken" }.Where(Flag).ToList();
        if (others.Count > 0) throw new InvalidDataException($"{path}: {others[0]} is not supported (only mean or cls pooling)");
        if (mean == cls) throw new InvalidDataException($"{path}: expected exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token to be true");
        return mean ? PoolingMode.Mean : PoolingMode.Cls;
    }

    /// <summary>sentence_bert_config.json's max_seq_length, or null.</summary>
    public static int? ReadMaxSequenceLength(string folder)
    {
        string path = Path.Combine(folder, SentenceConfigFile);
        if (!File.Exists(path)) return null;
        var o = ReadObject(path);
        return o["max_seq_length"] is JsonValue v && v.TryGetValue<int>(out int n) && n > 0 ? n : null;
    }

    public static void Write(string folder, PoolingMode mode, int hiddenSize, int maxSequenceLength)
    {
        var options = new JsonSerializerOptions { WriteIndented = true };
        var pooling = new JsonObject
        {
            ["word_embedding_dimension"] = hiddenSize,
            ["pooling_mode_cls_token"] = mode == PoolingMode.Cls,
            ["pooling_mode_mean_tokens"] = mode == PoolingMode.Mean,
            ["pooling_mode_max_tokens"] = false,
            ["pooling_mode_mean_sqrt_len_tokens"] = false,
        };
        Directory.CreateDirectory(Path.Combine(folder, Path.GetDirectoryName(PoolingConfigFile)!));
        File.WriteAllText(Path.Combine(folder, PoolingConfigFile), pooling.ToJsonString(options));
        var sentence = new JsonObject { ["max_seq_length"] = maxSequenceLength, ["do_lower_case"] = false };
        File.WriteAllText(Path.Combine(folder, SentenceConfigFile), sentence.ToJsonString(options));
    }

    /// <summary>
    /// Pools one sequence's hidden states [seq, hidden] (row-major) into <paramref name="embedding"/>
    /// and L2-normalises it (as sentence-transformers' Normalize module, with its 1e-12 floor).
    /// </summary>
    public static void Pool(ReadOnlySpan<float> hidden, ReadOnlySpan<int> attentionMask, int hiddenSize, PoolingMode mode, Span<float> embedding)
    {
        if (embedding.Length != hiddenSize) throw new ArgumentException($"embedding has {embedding.Length} slots for hidden size {hiddenSize}");
        var sum = new double[hiddenSize];
        if (mode == PoolingMode.Cls)
        {
            for (int j = 0; j < hiddenSize; j++) sum[j] = hidden[j];
        }
        else
        {
            int kept = 0;
            for (int t = 0; t < attentionMask.Length; t++)
            {
                if (attentionMask[t] == 0) continue;
                kept++;
                var row = hidden.Slice(t * hiddenSize, hiddenSize);
                for (int j = 0; j < hiddenSize; j++) sum[j] += row[j];
            }
            // sentence-transformers clamps the token count at 1e-9; a sequence always keeps [CLS].
            double count = Math.Max(kept, 1e-9);
            for (int j = 0; j < hiddenSize; j++) sum[j] /= count;
        }
        double norm = 0;
        for (int j = 0; j < hiddenSize; j++) norm += sum[j] * sum[j];
        norm = Math.Max(Math.Sqrt(norm), 1e-12);
        for (int j = 0; j < hiddenSize; j++) embedding[j] = (float)(sum[j] / norm);
    }

    private static JsonObject ReadObject(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: expected a JSON object");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }
}
