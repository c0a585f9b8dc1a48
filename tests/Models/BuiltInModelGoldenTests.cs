using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.BuiltIn;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

/// <summary>
/// The golden test of the built-in models, against independent implementations: ONNX Runtime runs
/// each package's original ONNX export (graph optimisations off, so it computes the graph as
/// exported), and Microsoft.ML.Tokenizers' BertTokenizer tokenizes with the package's vocabulary.
/// `nsparse embed --json --hidden` on the converted checkpoint must give the reference's token ids,
/// and its last hidden states and pooled, normalised embeddings within 1e-5.
/// </summary>
[TestFixture("minilm-l6")]
[TestFixture("arctic-xs")]
public class BuiltInModelGoldenTests
{
    private const double Tolerance = 1e-5;
    private readonly BuiltInModel _model;
    private string _root = "", _folder = "";
    private byte[] _onnx = Array.Empty<byte>();
    private HfBertReferenceTokenizer _reference = null!;
    private List<JsonObject>? _embedded;
    private Microsoft.ML.Tokenizers.BertTokenizer _mlTokenizer = null!;

    public BuiltInModelGoldenTests(string name) => _model = BuiltInModels.Find(name)!;

    /// <summary>25 texts: punctuation, accents, digits, CJK and kana, Hangul, Cyrillic and Greek, odd whitespace, literal special tokens, emoji, very short ones, and one past the model's maximum length.</summary>
    public static readonly string[] Sentences =
    {
        "Hello world!", "a", "Hi.", "The quick brown fox jumps over the lazy dog.",
        "Café au lait, s'il vous plaît — très bien!", "Naïve résumé: Zoë's façade in São Paulo.",
        "In 2023, 47.5% of 1,024 users paid $3.99 (or €4) each.", "Call +1-800-555-0199 before 10:30am on 12/05/2024.",
        "What?!... No way -- really??", "e-mail: someone@example.com; URL: https://example.org/path?q=1&r=2",
        "Ünïcödé ÀÉÎÕÜ ñ ç ø å", "東京は日本の首都です。", "Привет, мир! Ελληνικά γράμματα.",
        "    leading and trailing spaces    ", "Tabs\tand\nnewlines\r\nmixed", "UPPER CASE SHOUTING AND MiXeD cAsE",
        "antidisestablishmentarianism supercalifragilisticexpialidocious", "Don't won't can't shouldn't y'all",
        "The 3rd-place finisher ran 10,000m in 27:43.12.", "[MASK] is a special token, as are [CLS] and [SEP].",
        "Émile Zola wrote «J'accuse…!» in 1898.", "I love pizza 🍕🍕!", "x", "안녕하세요, 세계!",
        string.Join(" ", Enumerable.Range(0, 320).Select(i => $"word{i % 37} and, {i}")),
    };

    [OneTimeSetUp]
    public void Convert()
    {
        string assembly = BuiltInModels.FindAssembly(_model)
            ?? throw new AssertionException($"the package {_model.PackageId} {_model.PackageVersion} is not restored; the build restores it (dotnet restore)");
        _root = Path.Combine(Path.GetTempPath(), "nsparse-golden-" + Guid.NewGuid().ToString("N"));
        _folder = BuiltInModels.Ensure(_model, _root);
        _onnx = ManifestResourceReader.Read(assembly, _model.OnnxResource);
        var vocab = ManifestResourceReader.Read(assembly, _model.VocabResource);
        _reference = new HfBertReferenceTokenizer(NativeSparsity.Models.Text.WordPieceTokenizer.ParseVocabulary(Encoding.UTF8.GetString(vocab)));
        _mlTokenizer = Microsoft.ML.Tokenizers.BertTokenizer.Create(new MemoryStream(vocab), new Microsoft.ML.Tokenizers.BertOptions
        {
            LowerCaseBeforeTokenization = true, ApplyBasicTokenization = true, RemoveNonSpacingMarks = true,
            IndividuallyTokenizeCjk = true, SplitOnSpecialTokens = true,
        });
    }

    [OneTimeTearDown]
    public void Clean()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    /// <summary>The reference tokenizer's ids, cut as sentence-transformers cuts them: [CLS] + the first max-2 tokens + [SEP].</summary>
    private int[] ReferenceIds(string text)
    {
        var ids = _reference.Encode(text);
        if (ids.Count > _model.MaxSequenceLength) ids = ids.Take(_model.MaxSequenceLength - 1).Append(ids[^1]).ToList();
        return ids.ToArray();
    }

    /// <summary>`nsparse embed --json --hidden` run as the product runs: its own process, with its invariant globalization.</summary>
    private List<JsonObject> Embed(IReadOnlyList<string> texts)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "nsparse.dll"), "embed", "--checkpoint", _folder, "--json", "--hidden", "--threads", "1" })
            start.ArgumentList.Add(a);
        foreach (string t in texts) start.ArgumentList.Add(t);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var lines = new List<string>();
        while (process.StandardOutput.ReadLine() is { } line) lines.Add(line);
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(0), stderr.Result);
        return lines.Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();
    }

    // Where Microsoft.ML.Tokenizers parts from Hugging Face: it drops symbols (S* categories: $ + < = > ^ ` | ~, currency,
    // emoji), which Hugging Face keeps, glues words across tabs and newlines, which Hugging Face treats as spaces, and
    // leaves Hangul syllables whole, which Hugging Face's NFD decomposes into jamo.
    private static bool DivergesInMicrosoftML(string text) => text.Contains('\t') || text.Contains('\n') || text.EnumerateRunes().Any(r =>
        r.Value is >= 0xAC00 and <= 0xD7A3 || Rune.GetUnicodeCategory(r) is System.Globalization.UnicodeCategory.MathSymbol or System.Globalization.UnicodeCategory.CurrencySymbol
            or System.Globalization.UnicodeCategory.ModifierSymbol or System.Globalization.UnicodeCategory.OtherSymbol);

    [Test]
    public void TheReferenceTokenizerAgreesWithMicrosoftMLTokenizersWhereThatFollowsHuggingFace()
    {
        var plain = Sentences.Where(t => !DivergesInMicrosoftML(t)).ToList();
        Assert.That(plain, Has.Count.GreaterThanOrEqualTo(17));
        foreach (string text in plain)
            Assert.That(_reference.Encode(text), Is.EqualTo(_mlTokenizer.EncodeToIds(text, true, true, true)), text);
    }

    [Test]
    public void TokenIdsEqualTheReferenceTokenizers()
    {
        var ours = _embedded ??= Embed(Sentences);
        Assert.That(ours, Has.Count.EqualTo(Sentences.Length));
        for (int i = 0; i < Sentences.Length; i++)
        {
            var ids = ours[i]["input_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            Assert.That(ids, Is.EqualTo(ReferenceIds(Sentences[i])), $"text {i}: {Sentences[i]}");
            Assert.That(ours[i]["tokens"]!.AsArray(), Has.Count.EqualTo(ids.Length));
        }
        // The long text is cut at the model's maximum length, as sentence-transformers cuts it.
        Assert.That(ours[^1]["input_ids"]!.AsArray(), Has.Count.EqualTo(_model.MaxSequenceLength));
        // The tokenizer gives the same ids in this process (ICU) as in the product's (invariant globalization).
        using var cpu = new NativeSparsity.Engine.Backends.Cpu.CpuBackend(1);
        using var parameters = BertCheckpoint.Load(_folder, cpu, new BertHeads(false, false, false)).Parameters;
        var inProcess = new SentenceEncoder(parameters, NativeSparsity.Models.Text.Tokenizers.Load(_folder), _model.Pooling, _model.MaxSequenceLength);
        for (int i = 0; i < Sentences.Length; i++)
            Assert.That(inProcess.Frame(Sentences[i]), Is.EqualTo(ours[i]["input_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray()), $"text {i}");
    }

    [Test]
    public void HiddenStatesAndEmbeddingsAgreeWithOnnxRuntimeWithin1e5()
    {
        var ours = _embedded ??= Embed(Sentences);
        var ids = Sentences.Select(ReferenceIds).ToArray();
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = 1 };
        using var session = new InferenceSession(_onnx, options);
        // The short texts go through ONNX Runtime as one padded batch, the long one alone.
        var batches = new[] { Enumerable.Range(0, Sentences.Length - 1).ToArray(), new[] { Sentences.Length - 1 } };
        double worstHidden = 0, worstEmbedding = 0;
        foreach (var batch in batches)
        {
            var hidden = RunReference(session, batch.Select(i => ids[i]).ToArray(), out int seq);
            for (int b = 0; b < batch.Length; b++)
            {
                int i = batch[b], n = ids[i].Length, c = 384;
                var rows = ours[i]["last_hidden_state"]!.AsArray();
                Assert.That(rows, Has.Count.EqualTo(n), $"text {i}");
                for (int t = 0; t < n; t++)
                {
                    var row = rows[t]!.AsArray();
                    for (int j = 0; j < c; j++)
                        worstHidden = Math.Max(worstHidden, Math.Abs(row[j]!.GetValue<float>() - hidden[((long)b * seq + t) * c + j]));
                }
                var expected = ReferencePooling(hidden.AsSpan(b * seq * c, n * c), n, c);
                var embedding = ours[i]["embedding"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
                Assert.That(embedding, Has.Length.EqualTo(c));
                for (int j = 0; j < c; j++) worstEmbedding = Math.Max(worstEmbedding, Math.Abs(embedding[j] - expected[j]));
            }
        }
        TestContext.Out.WriteLine($"{_model.Name}: max |ours - ONNX Runtime|: last hidden state {worstHidden:E2}, embedding {worstEmbedding:E2}");
        Assert.That(worstHidden, Is.LessThanOrEqualTo(Tolerance));
        Assert.That(worstEmbedding, Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>Last hidden states [batch, seq, 384] of the original export, the sequences right-padded with [PAD] (id 0) and masked.</summary>
    private static float[] RunReference(InferenceSession session, int[][] ids, out int seq)
    {
        int batch = ids.Length;
        seq = ids.Max(x => x.Length);
        var inputIds = new long[batch * seq];
        var mask = new long[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < ids[b].Length; t++) { inputIds[b * seq + t] = ids[b][t]; mask[b * seq + t] = 1; }
        var dims = new[] { batch, seq };
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(inputIds, dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[batch * seq], dims)),
        };
        using var results = session.Run(inputs);
        return results.First(r => r.Name == "last_hidden_state").AsTensor<float>().ToArray();
    }

    // Written apart from SentencePooling on purpose: mean over the kept tokens or the [CLS] row, then L2, in double.
    private double[] ReferencePooling(ReadOnlySpan<float> rows, int n, int c)
    {
        var v = new double[c];
        if (_model.Pooling == PoolingMode.Cls) for (int j = 0; j < c; j++) v[j] = rows[j];
        else
        {
            for (int t = 0; t < n; t++) for (int j = 0; j < c; j++) v[j] += rows[t * c + j];
            for (int j = 0; j < c; j++) v[j] /= n;
        }
        double norm = Math.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }

    [Test]
    public void ASecondUseReusesTheCacheAndABrokenCacheIsConvertedAgain()
    {
        var said = new List<string>();
        Assert.That(BuiltInModels.Ensure(_model, _root, said.Add), Is.EqualTo(_folder));
        Assert.That(said, Is.Empty, "a valid cache folder is reused without converting");
        string weights = Path.Combine(_folder, BertCheckpoint.WeightsFile);
        using (var f = new FileStream(weights, FileMode.Open, FileAccess.ReadWrite)) { f.Position = f.Length - 1; f.WriteByte(0x5a); }
        Assert.That(BuiltInModels.Ensure(_model, _root, said.Add), Is.EqualTo(_folder));
        Assert.That(said.Any(s => s.Contains("converting", StringComparison.Ordinal)), Is.True, "weights that fail their sha256 are converted again");
        Assert.That(SentencePooling.ReadPooling(_folder), Is.EqualTo(_model.Pooling));
        Assert.That(SentencePooling.ReadMaxSequenceLength(_folder), Is.EqualTo(_model.MaxSequenceLength));
    }

    [Test]
    public void WithoutItsPackageABuiltInModelIsAOneLineErrorNamingThePackage()
    {
        string empty = Path.Combine(_root, "no-packages"), cache = Path.Combine(_root, "other-cache");
        Directory.CreateDirectory(empty);
        var e = Assert.Throws<FileNotFoundException>(() => BuiltInModels.Ensure(_model, cache, packageRoots: new[] { empty }))!;
        Assert.That(e.Message, Does.Contain(_model.PackageId).And.Contain(_model.PackageVersion).And.Contain(empty).And.Not.Contain("\n"));
        Assert.That(Directory.Exists(Path.Combine(cache, _model.Name)), Is.False);
    }

    [Test]
    public void PoolingOptionOverridesTheCheckpointsConfig()
    {
        var other = _model.Pooling == PoolingMode.Mean ? PoolingMode.Cls : PoolingMode.Mean;
        var lines = new List<string>();
        EmbedCommand.Run(new EmbedOptions { Checkpoint = _folder, Texts = new[] { "Hello world!", "Hello world!" }, Json = true, Pooling = other, Threads = 1 }, lines.Add);
        var defaults = Embed(new[] { "Hello world!" })[0];
        var overridden = (JsonObject)JsonNode.Parse(lines[0])!;
        var a = defaults["embedding"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
        var b = overridden["embedding"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
        Assert.That(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3), "mean and [CLS] pooling differ");
        Assert.That(b.Sum(x => (double)x * x), Is.EqualTo(1.0).Within(1e-5), "both are L2-normalised");
        Assert.That(overridden.ContainsKey("last_hidden_state"), Is.False, "hidden states only with --hidden");
    }

    [Test]
    public void CheckpointLacksOnlyWhatTheModelLacksAndSaysSo()
    {
        var missing = BertCheckpoint.MissingFor(_folder, BertHeads.SequenceClassification(2));
        var fresh = BertLoadReport.DescribeFresh(missing)!;
        Assert.That(fresh, Does.Contain("classifier"));
        Assert.That(fresh.Contains("bert.pooler.dense", StringComparison.Ordinal), Is.EqualTo(_model.Name == "arctic-xs"),
                    "Arctic-XS has no pooler, MiniLM has one");
        Assert.That(fresh, Does.Not.Contain("\n"));
        Assert.That(Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(_folder, "vocab.txt"))), Does.Not.Contain("\r"), "vocab.txt is written with LF");
    }
}
