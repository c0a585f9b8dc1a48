using System.Text.Json.Nodes;
using NativeSparsity.Engine.IO;
using NativeSparsity.Experiments;
using NativeSparsity.Models.BuiltIn;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

/// <summary>
/// `nsparse import onnx` on the two packages' exports (read out of the package files) and on
/// edited copies of them: the real ones give the published parameter counts, each broken one is
/// refused with exit code 2 and one line naming the node or tensor.
/// </summary>
public class OnnxImportTests
{
    private string _root = "";
    private readonly Dictionary<string, (string Onnx, string Vocab, byte[] Bytes)> _exports = new();

    [OneTimeSetUp]
    public void ExtractExports()
    {
        _root = Path.Combine(Path.GetTempPath(), "nsparse-onnx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_root);
        foreach (var model in BuiltInModels.All)
        {
            string assembly = BuiltInModels.FindAssembly(model)
                ?? throw new AssertionException($"the package {model.PackageId} {model.PackageVersion} is not restored; the build restores it");
            var bytes = ManifestResourceReader.Read(assembly, model.OnnxResource);
            string onnx = Path.Combine(_root, model.Name + ".onnx"), vocab = Path.Combine(_root, model.Name + "-vocab.txt");
            File.WriteAllBytes(onnx, bytes);
            File.WriteAllBytes(vocab, ManifestResourceReader.Read(assembly, model.VocabResource)); // CRLF line ends, as shipped
            _exports[model.Name] = (onnx, vocab, bytes);
        }
    }

    [OneTimeTearDown]
    public void Clean()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static (int Code, string Out, string Error) Nsparse(params string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Console.SetOut(stdout); Console.SetError(stderr);
        try { return (Program.BuildRootCommand().Parse(args).Invoke(), stdout.ToString(), stderr.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldError); }
    }

    [TestCase("minilm-l6", "22,713,216", "yes")]
    [TestCase("arctic-xs", "22,565,376", "no")]
    public void ImportGivesACheckpointThatInspectCountsAsPublished(string name, string parameters, string pooler)
    {
        var (onnx, vocab, _) = _exports[name];
        string folder = Path.Combine(_root, name + "-checkpoint");
        var import = Nsparse("import", "onnx", onnx, "--vocab", vocab, "--out", folder);
        Assert.That(import.Code, Is.EqualTo(0), import.Error);
        Assert.That(import.Out, Does.Contain("12 heads").And.Contain("LayerNorm eps 1E-12"));
        var inspect = Nsparse("inspect", folder);
        Assert.That(inspect.Code, Is.EqualTo(0), inspect.Error);
        Assert.That(inspect.Out, Does.Contain($"parameters: {parameters} in all").And.Contain("10,616,832 prunable"));
        Assert.That(inspect.Out, Does.Contain($"pooler {pooler}").And.Contain("6 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30522"));

        // What Hugging Face's BertModel.from_pretrained reads: its config keys and its own tensor names.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        Assert.That(config["architectures"]![0]!.GetValue<string>(), Is.EqualTo("BertModel"));
        Assert.That(config["model_type"]!.GetValue<string>(), Is.EqualTo("bert"));
        Assert.That(config["layer_norm_eps"]!.GetValue<double>(), Is.EqualTo(1e-12).Within(1e-18));
        Assert.That(config["hidden_act"]!.GetValue<string>(), Is.EqualTo("gelu"));
        using var weights = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        Assert.That(weights.Contains("encoder.layer.5.output.dense.weight") && weights.Contains("embeddings.word_embeddings.weight"), Is.True);
        Assert.That(weights.Get("encoder.layer.0.intermediate.dense.weight").Shape, Is.EqualTo(new long[] { 1536, 384 }), "[out, in] as torch.nn.Linear");
        Assert.That(weights.Contains("pooler.dense.weight"), Is.EqualTo(pooler == "yes"));
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")))!;
        Assert.That(tokenizerConfig["do_lower_case"]!.GetValue<bool>(), Is.True);
        Assert.That(File.ReadAllLines(Path.Combine(folder, "vocab.txt")), Has.Length.EqualTo(30522));
    }

    /// <summary>Imports an edited copy of an export and returns the one error line.</summary>
    private string Refused(string name, Func<byte[], byte[]> edit)
    {
        var (_, vocab, bytes) = _exports[name];
        string path = Path.Combine(_root, $"{name}-edited.onnx");
        File.WriteAllBytes(path, edit(bytes));
        string folder = Path.Combine(_root, "refused-" + Guid.NewGuid().ToString("N"));
        var run = Nsparse("import", "onnx", path, "--vocab", vocab, "--out", folder);
        File.Delete(path);
        Assert.That(run.Code, Is.EqualTo(2), run.Out + run.Error);
        string error = run.Error.Trim();
        Assert.That(error, Does.StartWith("error: ").And.Not.Contain("\n"), "one line");
        Assert.That(Directory.Exists(folder), Is.False, "nothing is written");
        TestContext.Out.WriteLine(error);
        return error;
    }

    private static byte[] Edit(byte[] bytes, Action<ProtoMessage> change)
    {
        var model = ProtoMessage.Parse(bytes);
        change(model);
        return model.ToBytes(); // edited nested messages are encoded again

    }

    [TestCase(0.5)]
    [TestCase(0.999)]
    [TestCase(0.0001)]
    public void ATruncatedFileIsRefused(double keep) =>
        Assert.That(Refused("minilm-l6", b => b[..(int)(b.Length * keep)]), Does.Contain("minilm-l6-edited.onnx").And.Contain("truncated"));

    [Test]
    public void AnUnknownOpIsRefusedNamingTheNode() =>
        Assert.That(Refused("minilm-l6", b => Edit(b, m => m.Node("Erf_116").Message.One(4).SetText("Relu"))),
                    Does.Contain("node 'Erf_116'").And.Contain("op 'Relu'"));

    [TestCase(10, "float16")]
    [TestCase(3, "int8")]
    public void AHalfOrQuantizedInitializerIsRefusedNamingTheTensor(int dataType, string typeName) =>
        Assert.That(Refused("minilm-l6", b => Edit(b, m => m.Initializer("encoder.layer.0.attention.self.query.bias").Message.One(2).Varint = (ulong)dataType)),
                    Does.Contain("tensor 'encoder.layer.0.attention.self.query.bias'").And.Contain(typeName));

    [Test]
    public void ExternalDataIsRefusedNamingTheTensor() =>
        Assert.That(Refused("arctic-xs", b => Edit(b, m => m.Initializer("embeddings.word_embeddings.weight").Message.Fields.Add(
                        new ProtoMessage.Field { Number = 14, Type = Google.Protobuf.WireFormat.WireType.Varint, Varint = 1 }))),
                    Does.Contain("tensor 'embeddings.word_embeddings.weight'").And.Contain("external"));

    [Test]
    public void AMissingTensorIsRefusedNamingTheParameter() =>
        Assert.That(Refused("minilm-l6", b => Edit(b, m => m.Graph.Fields.Remove(m.Initializer("encoder.layer.3.output.LayerNorm.bias")))),
                    Does.Contain("'bert.encoder.layer.3.output.LayerNorm.bias'"));

    [Test]
    public void AnAnonymousWeightWithNoNamedBiasIsRefusedNamingTheNode()
    {
        // MiniLM's MatMul nodes carry no path names: without the bias's name the weight cannot be placed.
        string error = Refused("minilm-l6", b => Edit(b, m =>
        {
            m.Initializer("encoder.layer.0.attention.self.query.bias").Message.One(8).SetText("b0");
            m.Node("Add_35").Message.All(1).First(i => i.Text == "encoder.layer.0.attention.self.query.bias").SetText("b0");
        }));
        Assert.That(error, Does.Contain("node 'MatMul_34'").And.Contain("cannot name weight"));
    }

    [Test]
    public void ABiasAndANodeNameThatDisagreeAreRefused()
    {
        // Arctic-XS names each Linear twice, by its bias and by its node's path: they must agree.
        string error = Refused("arctic-xs", b => Edit(b, m =>
            m.Node("/encoder/layer.0/attention/self/query/MatMul").Message.One(3).SetText("/encoder/layer.0/attention/self/key/MatMul")));
        Assert.That(error, Does.Contain("node '/encoder/layer.0/attention/self/key/MatMul'")
                               .And.Contain("bert.encoder.layer.0.attention.self.query.weight").And.Contain("bert.encoder.layer.0.attention.self.key.weight"));
    }

    [Test]
    public void AVocabularyOfTheWrongSizeIsRefused()
    {
        var (onnx, _, _) = _exports["arctic-xs"];
        string vocab = Path.Combine(_root, "short-vocab.txt");
        File.WriteAllLines(vocab, new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello" });
        var run = Nsparse("import", "onnx", onnx, "--vocab", vocab, "--out", Path.Combine(_root, "never"));
        Assert.That(run.Code, Is.EqualTo(2));
        Assert.That(run.Error.Trim(), Does.Contain("6 tokens").And.Contain("30522 rows").And.Not.Contain("\n"));
    }
}
