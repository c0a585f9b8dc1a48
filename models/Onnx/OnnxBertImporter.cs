using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Models.Onnx;

/// <summary>What an import should write besides the weights.</summary>
public sealed record OnnxImportOptions
{
    /// <summary>Writes sentence-transformers' pooling files (1_Pooling/config.json, sentence_bert_config.json) when set.</summary>
    public PoolingMode? Pooling { get; init; }
    /// <summary>sentence_bert_config.json's max_seq_length (default: max_position_embeddings).</summary>
    public int? MaxSequenceLength { get; init; }
    /// <summary>Extra safetensors metadata (where the weights came from).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>Writes more files into the folder being built (after the weights, before it is renamed into place).</summary>
    public Action<string>? ExtraFiles { get; init; }
}

/// <summary>
/// Turns a BERT-encoder ONNX export and its WordPiece vocabulary into a checkpoint folder:
/// config.json (HF BERT keys, architectures BertModel), model.safetensors (HF names),
/// vocab.txt and tokenizer_config.json (bert-base-uncased's lower-casing), optionally the
/// sentence-transformers pooling files. The folder is written atomically.
/// </summary>
public static class OnnxBertImporter
{
    public static OnnxBertModel Import(string onnxPath, string vocabPath, string outFolder, OnnxImportOptions? options = null) =>
        Import(File.Exists(onnxPath) ? File.ReadAllBytes(onnxPath) : throw new FileNotFoundException($"{onnxPath}: no such ONNX file", onnxPath),
               onnxPath, WordPieceTokenizer.ReadVocabulary(vocabPath), outFolder, options);

    public static OnnxBertModel Import(byte[] onnx, string source, IReadOnlyList<string> vocabulary, string outFolder, OnnxImportOptions? options = null)
    {
        options ??= new OnnxImportOptions();
        var mapped = OnnxBertMapping.Map(OnnxModel.Parse(onnx, source), source);
        var config = mapped.Config;
        if (vocabulary.Count != config.VocabSize)
            throw new InvalidDataException($"the vocabulary has {vocabulary.Count} tokens, the word embeddings of {source} have {config.VocabSize} rows");
        var tokenizer = WordPieceTokenizer.FromVocabulary(vocabulary, lowercase: true);
        using var cpu = new CpuBackend(1);
        using var parameters = new BertParameters(cpu, new BertParameterLayout(config, mapped.Heads));
        foreach (var (name, data) in mapped.Tensors) cpu.CopyFromHost<float>(data, parameters[name]);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["converted_from"] = "onnx" };
        if (options.Metadata != null) foreach (var (k, v) in options.Metadata) metadata[k] = v;
        BertCheckpoint.Save(outFolder, parameters, metadata, folder =>
        {
            tokenizer.Save(folder);
            WriteTokenizerConfig(folder, config.MaxPositionEmbeddings);
            if (options.Pooling is { } pooling)
                SentencePooling.Write(folder, pooling, config.HiddenSize, options.MaxSequenceLength ?? config.MaxPositionEmbeddings);
            options.ExtraFiles?.Invoke(folder);
        });
        return mapped;
    }

    // What Hugging Face's BertTokenizer reads: bert-base-uncased's settings.
    private static void WriteTokenizerConfig(string folder, int maxLength)
    {
        var o = new JsonObject
        {
            ["tokenizer_class"] = "BertTokenizer", ["do_lower_case"] = true, ["strip_accents"] = null, ["tokenize_chinese_chars"] = true,
            ["model_max_length"] = maxLength, ["unk_token"] = SpecialTokenIds.UnkText, ["sep_token"] = SpecialTokenIds.SepText,
            ["pad_token"] = SpecialTokenIds.PadText, ["cls_token"] = SpecialTokenIds.ClsText, ["mask_token"] = SpecialTokenIds.MaskText,
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
