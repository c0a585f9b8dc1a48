using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Data.Corpus;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class WordNetPretrainTests
{
    /// <summary>
    /// The bar: a tiny BERT trains on the embedded corpus for a few hundred steps and its
    /// held-out MLM loss falls clearly (from about ln(vocab) at initialisation).
    /// </summary>
    [Test]
    public void TinyBertOnEmbeddedWordNetLearns()
    {
        int seed = TestUtil.FreshSeed();
        string cache = Path.Combine(Path.GetTempPath(), "nsparse-wn-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var data = PretrainingData.Prepare(new WordNetCorpus(), cache, vocabSize: 2048, fraction: 0.1, seed: 0);
            var sp = data.Tokenizer.Special;
            var settings = new PretrainSettings { BatchSize = 16, SequenceLength = 32, Steps = 300, LearningRate = 1e-3f, WarmupSteps = 30, Seed = (ulong)seed };
            var cfg = new BertConfig { VocabSize = data.Tokenizer.VocabSize, HiddenSize = 64, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 128, MaxPositionEmbeddings = 32 };
            var be = new CpuBackend();
            using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
            p.Initialize(settings.Seed);
            var windows = new TokenWindows(new CorpusTokenStream(data.Corpus), settings.SequenceLength, sp.Cls, sp.Sep, settings.Seed);
            using var trainer = new BertPretrainer(be, p, settings, windows, new MlmMasking(sp.Mask, 5, cfg.VocabSize));
            var before = trainer.EvaluateHeldOut(4);
            for (int s = 0; s < settings.Steps; s++) trainer.TrainStep();
            var after = trainer.EvaluateHeldOut(4);
            TestContext.Out.WriteLine($"{data.Corpus.TokenCount} tokens; held-out MLM loss {before.Loss:F3} -> {after.Loss:F3}, accuracy {before.Accuracy:P1} -> {after.Accuracy:P1}");
            Assert.That(before.Loss, Is.GreaterThan(Math.Log(cfg.VocabSize) - 0.5), "an untrained model is near uniform");
            Assert.That(after.Loss, Is.LessThan(before.Loss - 1.5), "MLM loss should fall clearly");
            Assert.That(after.Accuracy, Is.GreaterThan(before.Accuracy + 0.05));
        }
        finally { if (Directory.Exists(cache)) Directory.Delete(cache, true); }
    }
}
