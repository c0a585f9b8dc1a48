using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class CheckpointCommandsTests
{
    private static string TinyCheckpoint(string root, int seed, out int vocab, int extraVocab = 0, string? nanIn = null)
    {
        var tok = CompactBpeTokenizer.Build(new[] { "the cat sat on the mat", "a dog is a domestic animal", "the bird sings" }, 64);
        vocab = tok.VocabSize;
        var cfg = new BertConfig { VocabSize = tok.VocabSize + extraVocab, HiddenSize = 16, NumAttentionHeads = 2, NumHiddenLayers = 1, IntermediateSize = 32, MaxPositionEmbeddings = 32 };
        using var p = new BertParameters(new CpuBackend(), new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        if (nanIn != null) unsafe { p[nanIn].F32()[3] = float.NaN; p[nanIn].F32()[5] = float.PositiveInfinity; }
        string dir = Path.Combine(root, "ckpt");
        BertCheckpoint.Save(dir, p, extraFiles: tok.Save);
        return dir;
    }

    [Test]
    public void FillMaskJsonListsCandidatesWithProbabilitiesAndRawLogits()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-fill-" + Guid.NewGuid().ToString("N"));
        try
        {
            string dir = TinyCheckpoint(root, seed, out int vocab);
            var json = JsonNode.Parse(FillMaskCommand.Run(dir, "the [MASK] sat on the [MASK]", 3, asJson: true))!;
            var masks = json["masks"]!.AsArray();
            Assert.That(masks, Has.Count.EqualTo(2));
            foreach (var m in masks)
            {
                var cands = m!["candidates"]!.AsArray();
                Assert.That(cands, Has.Count.EqualTo(3));
                var probs = cands.Select(c => c!["probability"]!.GetValue<double>()).ToArray();
                Assert.That(probs, Is.Ordered.Descending);
                Assert.That(probs.All(q => q > 0 && q < 1), Is.True);
                var logits = m["logits"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
                Assert.That(logits, Has.Length.EqualTo(vocab));
                // The top candidate is the arg-max of the raw logits, and its probability their softmax.
                int best = cands[0]!["token_id"]!.GetValue<int>();
                Assert.That(logits[best], Is.EqualTo(logits.Max()));
                double z = logits.Sum(l => Math.Exp(l - logits.Max()));
                Assert.That(probs[0], Is.EqualTo(1 / z).Within(1e-9));
            }
            Assert.Throws<ArgumentException>(() => FillMaskCommand.Run(dir, "no mask here", 3, false));
            Assert.DoesNotThrow(() => InspectCommand.Inspect(dir));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void CompressInspectAndDecompressCommandsRoundTrip()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-compress-" + Guid.NewGuid().ToString("N"));
        try
        {
            string dir = TinyCheckpoint(root, seed, out _);
            string packed = Path.Combine(root, "packed"), back = Path.Combine(root, "back");
            CompressCommand.Run(dir, packed, compress: true);
            Assert.DoesNotThrow(() => InspectCommand.Inspect(packed));
            Assert.DoesNotThrow(() => FillMaskCommand.Run(packed, "the [MASK] sat", 2, asJson: true));
            CompressCommand.Run(packed, back, compress: false);
            Assert.That(File.ReadAllBytes(Path.Combine(back, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir, "model.safetensors"))));
            Assert.That(Directory.GetFiles(back).Select(Path.GetFileName), Is.EquivalentTo(Directory.GetFiles(dir).Select(Path.GetFileName)));
            Assert.Throws<ArgumentException>(() => CompressCommand.Run(dir, dir, compress: true));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test, NonParallelizable] // redirects the console
    public void InspectAndLoadsRefuseNonFiniteWeightsNamingTheTensor()
    {
        string root = Path.Combine(Path.GetTempPath(), "nsparse-nan-" + Guid.NewGuid().ToString("N"));
        const string tensor = "bert.encoder.layer.0.attention.self.key.weight";
        try
        {
            string dir = TinyCheckpoint(root, TestUtil.FreshSeed(), out _, nanIn: tensor);
            var saved = Console.Out;
            var output = new StringWriter();
            Console.SetOut(output);
            try { Assert.That(CommandRunner.Run(() => InspectCommand.Inspect(dir)), Is.EqualTo(2)); }
            finally { Console.SetOut(saved); }
            Assert.That(output.ToString(), Does.Contain($"non-finite: {tensor}: 2 values"));
            using var cpu = new CpuBackend();
            var e = Assert.Throws<NativeSparsity.Engine.IO.SafetensorsException>(() => BertCheckpoint.Load(dir, cpu, BertHeads.PreTraining));
            Assert.That(e!.Message, Does.Contain(tensor).And.Contain("2 non-finite values").And.Contain("flat index 3"));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test, NonParallelizable] // redirects the console
    public void AVocabularyShorterThanTheConfigOrEmptyIsRefused()
    {
        string root = Path.Combine(Path.GetTempPath(), "nsparse-vocab-" + Guid.NewGuid().ToString("N"));
        try
        {
            string dir = TinyCheckpoint(root, TestUtil.FreshSeed(), out int vocab, extraVocab: 5);
            var e = Assert.Throws<InvalidDataException>(() => InspectCommand.Inspect(dir));
            Assert.That(e!.Message, Does.Contain($"holds {vocab} tokens but config.json's vocab_size is {vocab + 5}"));
            Assert.Throws<InvalidDataException>(() => FillMaskCommand.Run(dir, "the [MASK]", 3, false));

            // An empty WordPiece vocab.txt in place of the compact tokenizer.
            foreach (var f in Directory.GetFiles(dir, "vocab*")) File.Delete(f);
            File.WriteAllText(Path.Combine(dir, WordPieceTokenizer.FileName), "");
            var saved = Console.Error;
            Console.SetError(new StringWriter());
            try { Assert.That(CommandRunner.Run(() => InspectCommand.Inspect(dir)), Is.EqualTo(2), "an empty vocabulary"); }
            finally { Console.SetError(saved); }
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
