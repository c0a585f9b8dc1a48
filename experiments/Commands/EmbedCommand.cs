using System.CommandLine;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Experiments.Commands;

/// <summary>What `nsparse embed` runs with.</summary>
public sealed record EmbedOptions
{
    public required string Checkpoint { get; init; }
    public IReadOnlyList<string> Texts { get; init; } = Array.Empty<string>();
    /// <summary>Overrides the checkpoint's sentence-transformers pooling config.</summary>
    public PoolingMode? Pooling { get; init; }
    /// <summary>Overrides sentence_bert_config.json's max_seq_length.</summary>
    public int? MaxSequenceLength { get; init; }
    public int BatchSize { get; init; } = 32;
    public bool Json { get; init; }
    public bool Hidden { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    /// <summary>Run the projections pruned beyond the break-even through the sparse kernels (CPU).</summary>
    public bool Sparse { get; init; }
    /// <summary>Prune this fraction of the prunable weights by global magnitude in memory first (CPU; 0: as loaded).</summary>
    public double Sparsity { get; init; }
}

/// <summary>`nsparse embed`: sentence embeddings as the model's sentence-transformers configuration makes them.</summary>
public static class EmbedCommand
{
    public static Command Build()
    {
        var cmd = new Command("embed", "Sentence embeddings of texts: [CLS] text [SEP] through the encoder (dense or pruned checkpoint), pooled as the checkpoint's " +
                                       "sentence-transformers config says (1_Pooling/config.json: minilm-l6 mean over the attention mask, arctic-xs the [CLS] state), then L2-normalised.");
        var checkpoint = new Option<string>("--checkpoint") { Description = $"The encoder: {CheckpointResolver.Help}.", Required = true };
        var texts = new Argument<string[]>("text") { Description = "Texts to embed (or --file).", Arity = ArgumentArity.ZeroOrMore };
        var file = new Option<string?>("--file") { Description = "Embed every non-empty line of this UTF-8 file (after the texts given as arguments)." };
        var pooling = new Option<string?>("--pooling") { Description = "mean or cls, instead of the checkpoint's pooling config." };
        var maxSeq = new Option<int?>("--max-seq-len") { Description = "Tokens per text, [CLS] and [SEP] included; longer texts are cut (default: sentence_bert_config.json's max_seq_length, else max_position_embeddings)." }.Positive();
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass (padded to the longest).", DefaultValueFactory = _ => 32 }.Positive();
        var json = new Option<bool>("--json") { Description = "One JSON object per text and line: text, tokens, input_ids, embedding." };
        var hidden = new Option<bool>("--hidden") { Description = "With --json, also last_hidden_state (one row per token)." };
        var sparse = new Option<bool>("--sparse") { Description = $"(CPU) Run the encoder projections at least {SparseEncoderWeights.ForwardFrom:P0} sparse through the sparse kernel (a pruned checkpoint; the rest stay dense). Says on stderr how many." };
        var sparsity = new Option<double>("--sparsity") { Description = "(CPU) Prune this fraction of the encoder's weight matrices by global magnitude in memory before embedding (0: as loaded). With --sparsity or --sparse the encoding time goes to stderr.", DefaultValueFactory = _ => 0 }.Within(0.0, 1.0, highOpen: true);
        var device = CommonOptions.Device();
        var threads = CommonOptions.Threads();
        cmd.Arguments.Add(texts);
        foreach (Option o in new Option[] { checkpoint, file, pooling, maxSeq, batch, json, hidden, sparse, sparsity, device, threads }) cmd.Options.Add(o);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            var all = new List<string>(r.GetValue(texts) ?? Array.Empty<string>());
            if (r.GetValue(file) is { } path)
            {
                if (!File.Exists(path)) throw new FileNotFoundException($"--file: no such file '{path}'", path);
                all.AddRange(File.ReadAllLines(path).Where(l => l.Trim().Length > 0));
            }
            if (all.Count == 0) throw new ArgumentException("nothing to embed: give texts as arguments or --file");
            if (r.GetValue(hidden) && !r.GetValue(json)) throw new ArgumentException("--hidden needs --json");
            var options = new EmbedOptions
            {
                Checkpoint = CheckpointResolver.Resolve(r.GetValue(checkpoint)!), Texts = all,
                Pooling = r.GetValue(pooling) is { } p ? SentencePooling.Parse(p) : null, MaxSequenceLength = r.GetValue(maxSeq),
                BatchSize = r.GetValue(batch), Json = r.GetValue(json), Hidden = r.GetValue(hidden), Device = r.GetValue(device)!, Threads = r.GetValue(threads),
                Sparse = r.GetValue(sparse), Sparsity = r.GetValue(sparsity),
            };
            Run(options, Console.WriteLine);
        }));
        return cmd;
    }

    /// <summary>Embeds every text and hands each output line to <paramref name="write"/>.</summary>
    public static void Run(EmbedOptions o, Action<string> write)
    {
        if (!Directory.Exists(o.Checkpoint)) throw new DirectoryNotFoundException($"--checkpoint: no folder '{o.Checkpoint}'");
        var pooling = o.Pooling ?? SentencePooling.ReadPooling(o.Checkpoint)
            ?? throw new ArgumentException($"{o.Checkpoint} has no {SentencePooling.PoolingConfigFile}: give --pooling mean or cls");
        var tokenizer = Tokenizers.LoadFor(o.Checkpoint, BertCheckpoint.ReadConfig(o.Checkpoint).VocabSize);
        using var backend = BackendFactory.Create(o.Device, out _, o.Threads);
        var (parameters, _) = BertCheckpoint.Load(o.Checkpoint, backend, new BertHeads(MaskedLm: false, NextSentence: false, Pooler: false));
        using (parameters)
        {
            int maxSeq = o.MaxSequenceLength ?? SentencePooling.ReadMaxSequenceLength(o.Checkpoint) ?? parameters.Config.MaxPositionEmbeddings;
            if (o.Sparsity != 0)
            {
                if (parameters.Backend is not Engine.Backends.Cpu.CpuBackend) throw new ArgumentException("--sparsity prunes on the CPU; leave --device at cpu");
                Engine.Sparsity.Masks.GlobalMagnitude(parameters.PrunableSet(), o.Sparsity).Apply(parameters.Backend);
            }
            var sparse = o.Sparse ? SparseEncoderWeights.ForInference(parameters) : null;
            if (o.Sparse)
                Console.Error.WriteLine(sparse == null ? $"--sparse: {backend.Name} has no sparse kernels; running dense"
                    : $"sparse kernel: {sparse.Count} of {4 * parameters.Config.NumHiddenLayers} encoder projections");
            var encoder = new SentenceEncoder(parameters, tokenizer, pooling, Math.Min(maxSeq, parameters.Config.MaxPositionEmbeddings), sparse);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            long tokens = 0;
            foreach (var e in encoder.Encode(o.Texts, o.BatchSize))
            {
                tokens += e.InputIds.Length;
                write(o.Json ? ToJson(e, tokenizer, parameters.Config.HiddenSize, o.Hidden).ToJsonString()
                             : $"{e.InputIds.Length,4} tokens  [{string.Join(", ", e.Embedding.Take(6).Select(x => x.ToString("F5", System.Globalization.CultureInfo.InvariantCulture)))}, ...]  {e.Text}");
            }
            if (o.Sparse || o.Sparsity != 0)
                Console.Error.WriteLine($"encoded {o.Texts.Count} texts, {tokens} tokens in {clock.Elapsed.TotalSeconds:F2} s ({tokens / clock.Elapsed.TotalSeconds:F0} tokens/s)");
        }
    }

    public static JsonObject ToJson(SentenceEncoding e, ITokenizer tokenizer, int hiddenSize, bool hidden)
    {
        static JsonArray Floats(ReadOnlySpan<float> values)
        {
            var array = new JsonArray();
            foreach (float v in values) array.Add((JsonNode)JsonValue.Create(v)); // the JsonNode overload: no reflection
            return array;
        }
        var o = new JsonObject
        {
            ["text"] = e.Text,
            ["tokens"] = new JsonArray(e.InputIds.Select(id => (JsonNode)JsonValue.Create(tokenizer.TokenText(id))).ToArray()),
            ["input_ids"] = new JsonArray(e.InputIds.Select(id => (JsonNode)JsonValue.Create(id)).ToArray()),
            ["embedding"] = Floats(e.Embedding),
        };
        if (hidden)
        {
            var rows = new JsonArray();
            for (int t = 0; t < e.InputIds.Length; t++) rows.Add((JsonNode)Floats(e.LastHiddenState.AsSpan(t * hiddenSize, hiddenSize)));
            o["last_hidden_state"] = rows;
        }
        return o;
    }
}
