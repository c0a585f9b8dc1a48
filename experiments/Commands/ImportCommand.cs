using System.CommandLine;
using System.Diagnostics;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Onnx;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse import onnx`: a BERT-encoder ONNX export into a checkpoint folder.</summary>
public static class ImportCommand
{
    public static Command Build()
    {
        var import = new Command("import", "Convert a model from another format into a checkpoint folder that every command accepts.");
        var onnx = new Command("onnx", "Convert a BERT-encoder ONNX export (fp32, self-contained; Hugging Face BertModel exported by torch.onnx) and its WordPiece vocab.txt " +
                                       "into a checkpoint folder: config.json, model.safetensors (Hugging Face names), vocab.txt, tokenizer_config.json. " +
                                       "What cannot be mapped (an unknown op, a missing or unnamed weight, fp16/quantized or external data) is refused with one line naming the node or tensor.");
        var model = new Argument<string>("model") { Description = "The .onnx file." };
        var vocab = new Option<string>("--vocab") { Description = "The model's WordPiece vocabulary (one token a line; LF or CRLF).", Required = true };
        var output = new Option<string>("--out") { Description = "Checkpoint folder to write (replaced atomically if it exists).", Required = true };
        var pooling = new Option<string?>("--pooling") { Description = "Also write sentence-transformers' pooling config (1_Pooling/config.json): mean or cls, as `nsparse embed` reads it." };
        var maxSeq = new Option<int?>("--max-seq-len") { Description = "With --pooling: the sentence length sentence_bert_config.json records (default: max_position_embeddings)." }.Positive();
        onnx.Arguments.Add(model);
        foreach (Option o in new Option[] { vocab, output, pooling, maxSeq }) onnx.Options.Add(o);
        onnx.SetAction(r => CommandRunner.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            string path = r.GetValue(model)!, outFolder = r.GetValue(output)!;
            using var folderLock = FolderLock.AcquireReplaced(outFolder, "import onnx");
            var mapped = OnnxBertImporter.Import(path, r.GetValue(vocab)!, outFolder, new OnnxImportOptions
            {
                Pooling = r.GetValue(pooling) is { } p ? SentencePooling.Parse(p) : null, MaxSequenceLength = r.GetValue(maxSeq),
            });
            Console.WriteLine(Describe(mapped, path, outFolder, clock.Elapsed.TotalSeconds));
        }));
        import.Subcommands.Add(onnx);
        return import;
    }

    public static string Describe(OnnxBertModel m, string source, string outFolder, double seconds)
    {
        var c = m.Config;
        var layout = new BertParameterLayout(c, m.Heads);
        return $"imported {source}: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, intermediate {c.IntermediateSize}, " +
               $"vocabulary {c.VocabSize}, LayerNorm eps {c.LayerNormEps:G}, pooler {(m.Heads.Pooler ? "yes" : "no")}; " +
               $"{layout.ParameterCount:N0} parameters, {layout.PrunableLength:N0} prunable; Linear weights named by their bias {m.NamedByBias}, " +
               $"by node name {m.NamedByNode}, by both (agreeing) {m.NamedByBoth}; wrote {Path.GetFullPath(outFolder)} in {seconds:F1} s";
    }
}
