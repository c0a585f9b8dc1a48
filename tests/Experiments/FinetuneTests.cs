using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>Tiny checkpoints and synthetic tasks for the fine-tuning tests (no pre-training).</summary>
public static class FinetuneFixtures
{
    public static readonly string[] Words =
    {
        "the", "a", "cat", "dog", "bird", "fish", "apple", "pear", "eats", "sees", "likes", "red", "big", "small", "green", "old",
    };

    public static WordPieceTokenizer Tokenizer() =>
        WordPieceTokenizer.FromVocabulary(new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Words).ToArray());

    /// <summary>Writes a randomly initialised tiny BERT with a WordPiece vocabulary into <paramref name="folder"/>.</summary>
    public static void WriteCheckpoint(string folder, ulong seed, int hidden = 32, int layers = 2, BertHeads? heads = null)
    {
        var tok = Tokenizer();
        var cfg = new BertConfig
        {
            VocabSize = tok.VocabSize, HiddenSize = hidden, NumAttentionHeads = 2, NumHiddenLayers = layers, IntermediateSize = 2 * hidden,
            MaxPositionEmbeddings = 32,
        };
        var be = new CpuBackend();
        using var p = new BertParameters(be, new BertParameterLayout(cfg, heads ?? BertHeads.PreTraining));
        p.Initialize(seed);
        BertCheckpoint.Save(folder, p, extraFiles: tok.Save);
    }

    /// <summary>Single-sentence task: is "apple" in the sentence? Balanced, random filler words.</summary>
    public static ClassificationTask ContainsApple(int train, int dev, int seed)
    {
        var rng = new System.Random(seed);
        var fillers = Words.Where(w => w != "apple").ToArray();
        TaskExample Make(int i)
        {
            int label = i % 2;
            int n = 4 + rng.Next(4);
            var words = Enumerable.Range(0, n).Select(_ => fillers[rng.Next(fillers.Length)]).ToList();
            if (label == 1) words[rng.Next(n)] = "apple";
            return new TaskExample(string.Join(" ", words), null, label);
        }
        return new ClassificationTask("contains-apple", new[] { "no", "yes" }, new[] { TaskMetric.Accuracy, TaskMetric.F1 }, false,
            new[]
            {
                new TaskSplit("train", Enumerable.Range(0, train).Select(Make).ToArray()),
                new TaskSplit("dev", Enumerable.Range(0, dev).Select(Make).ToArray()),
            });
    }

    public static string TempFolder(string tag) => Path.Combine(Path.GetTempPath(), $"nsparse-{tag}-" + Guid.NewGuid().ToString("N"));
}

public class FinetuneTests
{
    [Test]
    public void MaskedFinetuningKeepsPrunedWeightsExactlyZeroInTheSavedCheckpoint()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-mask");
        try
        {
            string ckpt = Path.Combine(root, "pretrained");
            FinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed);
            var task = FinetuneFixtures.ContainsApple(40, 12, seed);
            string outDir = Path.Combine(root, "out");
            var result = FinetuneCommand.Run(new FinetuneRunOptions
            {
                Checkpoint = ckpt, Task = "contains-apple", Sparsity = 0.5, OutputFolder = outDir, Save = true, Quiet = true,
                Train = new FinetuneSettings { Epochs = 2, BatchSize = 8, LearningRate = 1e-3f, Seed = (ulong)seed },
            }, task);
            Assert.That(result.Epochs, Has.Count.EqualTo(2));
            Assert.That(File.Exists(Path.Combine(outDir, "metrics.json")) && File.Exists(Path.Combine(outDir, "metrics.csv")));

            // The mask the run used, recomputed from the pre-trained weights.
            var be = new CpuBackend();
            var heads = BertHeads.SequenceClassification(2);
            using var before = BertCheckpoint.Load(ckpt, be, heads).Parameters;
            var mask = Masks.GlobalMagnitude(before.PrunableSet(), 0.5);
            long pruned = mask.PrunedCount();
            Assert.That(result.PrunedCount, Is.EqualTo(pruned));
            Assert.That(pruned, Is.EqualTo(before.Layout.PrunableLength / 2).Within(1));

            using var after = BertCheckpoint.Load(Path.Combine(outDir, "checkpoint"), be, heads).Parameters;
            var keep = mask.Keep.U8Span().ToArray();
            var w0 = TestUtil.Download(before.PrunableValues);
            var w1 = TestUtil.Download(after.PrunableValues);
            long zeros = 0, badPruned = 0, changedKept = 0;
            for (int i = 0; i < w1.Length; i++)
            {
                if (w1[i] == 0f) zeros++;
                if (keep[i] == 0 && BitConverter.SingleToInt32Bits(w1[i]) != 0) badPruned++;
                if (keep[i] != 0 && w1[i] != w0[i]) changedKept++;
            }
            Assert.That(badPruned, Is.Zero, "every pruned weight must be exactly +0 after fine-tuning");
            Assert.That(zeros, Is.GreaterThanOrEqualTo(pruned));
            Assert.That(changedKept, Is.GreaterThan(keep.Count(k => k != 0) / 2), "the kept weights should have trained");
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void LoadingForATaskSaysInOneLineWhatWasInitialisedFresh()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-fresh");
        try
        {
            var task = FinetuneFixtures.ContainsApple(8, 8, seed);
            var be = new CpuBackend();
            // An encoder without a pooler (as Arctic-XS), saved under BertModel's own names.
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed, heads: new BertHeads(MaskedLm: false, NextSentence: false, Pooler: false));
            var said = new List<string>();
            using (BertFinetuner.LoadForTask(root, be, task, (ulong)seed, said.Add)) { }
            Assert.That(said, Is.EqualTo(new[] { "initialised fresh (not in the checkpoint): bert.pooler.dense, classifier" }));
            // A pre-training checkpoint has a pooler: only the classifier is new.
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed);
            said.Clear();
            using (BertFinetuner.LoadForTask(root, be, task, (ulong)seed, said.Add)) { }
            Assert.That(said, Is.EqualTo(new[] { "initialised fresh (not in the checkpoint): classifier" }));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void DenseFinetuningLearnsAnEasyTask()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-dense");
        try
        {
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed);
            var task = FinetuneFixtures.ContainsApple(96, 48, seed);
            var be = new CpuBackend();
            using var p = BertFinetuner.LoadForTask(root, be, task, (ulong)seed);
            var settings = new FinetuneSettings { Epochs = 12, BatchSize = 16, LearningRate = 2e-3f, Seed = (ulong)seed };
            using var tuner = new BertFinetuner(p, task, Tokenizers.Load(root), settings);
            var losses = new List<double>();
            var epochs = tuner.Train(s => losses.Add(s.Loss));
            Assert.That(tuner.Step, Is.EqualTo(12 * 6));
            double first = losses.Take(6).Average(), last = losses.TakeLast(6).Average();
            TestContext.Out.WriteLine($"loss {first:F3} -> {last:F3}; dev accuracy by epoch {string.Join(" ", epochs.Select(e => e.Metrics["accuracy"].ToString("F2")))}");
            // Some seeds sit on the 50% plateau for most epochs and leave it only near the end (seed
            // 1918489036: accuracy 0.50 for eight epochs, then 0.77, 1.00; loss 0.699 -> 0.659), so the
            // loss need only fall; the dev accuracy below is what shows the task was learned.
            Assert.That(last, Is.LessThan(first - 0.02), "the training loss should fall (dropout keeps it off zero)");
            Assert.That(epochs[^1].Metrics["accuracy"], Is.GreaterThan(0.8));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void PartialBatchesAndEvaluationCoverEveryExampleOnce()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-partial");
        try
        {
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed, hidden: 16, layers: 1);
            var task = FinetuneFixtures.ContainsApple(13, 7, seed);
            var be = new CpuBackend();
            using var p = BertFinetuner.LoadForTask(root, be, task, (ulong)seed);
            using var tuner = new BertFinetuner(p, task, Tokenizers.Load(root),
                new FinetuneSettings { Epochs = 2, BatchSize = 5, Seed = (ulong)seed, MaxSteps = 5 });
            Assert.That(tuner.StepsPerEpoch, Is.EqualTo(3));
            Assert.That(tuner.TotalSteps, Is.EqualTo(5), "MaxSteps caps the schedule");
            var epochs = tuner.Train();
            Assert.That(tuner.Step, Is.EqualTo(5));
            Assert.That(epochs.Select(e => e.Steps), Is.EqualTo(new long[] { 3, 5 }));
            // Accuracy over 7 examples is a multiple of 1/7: no pad row was counted.
            double acc = epochs[^1].Metrics["accuracy"];
            Assert.That(acc * 7, Is.EqualTo(Math.Round(acc * 7)).Within(1e-9));
            Assert.Throws<ArgumentException>(() => new BertFinetuner(p, task, Tokenizers.Load(root), new FinetuneSettings { LearningRate = 0 }));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void EveryBatchingCoversTheEpochAndEvaluationDoesNotDependOnBatching()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-batching");
        try
        {
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed, hidden: 16, layers: 1);
            var task = FinetuneFixtures.ContainsApple(23, 11, seed);
            var be = new CpuBackend();
            using var p = BertFinetuner.LoadForTask(root, be, task, (ulong)seed);
            IReadOnlyDictionary<string, double>? reference = null;
            foreach (var mode in Enum.GetValues<FinetuneBatching>())
            {
                foreach (int batch in new[] { 1, 4 })
                {
                    using var tuner = new BertFinetuner(p, task, Tokenizers.Load(root), new FinetuneSettings { BatchSize = batch, Seed = (ulong)seed, Batching = mode });
                    var epoch = tuner.TrainingBatches(1).ToList();
                    Assert.That(epoch.SelectMany(b => b.ExampleIndices).OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 23)), $"{mode}, batch {batch}: every example once");
                    Assert.That(epoch, Has.Count.EqualTo(tuner.StepsPerEpoch));
                    Assert.That(epoch.Select(b => b.Batch.Seq), Has.All.LessThanOrEqualTo(tuner.SequenceLength));
                    if (mode != FinetuneBatching.Padded)
                        Assert.That(epoch.Select(b => b.Batch.Seq % BertFinetuner.PadMultiple == 0 || b.Batch.Seq == tuner.SequenceLength), Has.All.True);
                    // The same weights give the same predictions however the dev split is cut into batches.
                    var metrics = tuner.Evaluate();
                    reference ??= metrics;
                    Assert.That(metrics["accuracy"], Is.EqualTo(reference["accuracy"]), $"{mode}, batch {batch}");
                }
            }
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void NonFiniteLossStopsWithTheStepNumber()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-nan");
        try
        {
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed, hidden: 16, layers: 1);
            var task = FinetuneFixtures.ContainsApple(8, 4, seed);
            var be = new CpuBackend();
            using var p = BertFinetuner.LoadForTask(root, be, task, (ulong)seed);
            using var tuner = new BertFinetuner(p, task, Tokenizers.Load(root), new FinetuneSettings { Epochs = 1, BatchSize = 4, Seed = (ulong)seed });
            be.CopyFromHost<float>(new[] { float.NaN }, p["classifier.weight"].Slice(0, 1));
            var e = Assert.Throws<TrainingDivergedException>(() => tuner.Train());
            Assert.That(e!.Step, Is.EqualTo(1));
            StringAssert.Contains("step 1", e.Message);
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
