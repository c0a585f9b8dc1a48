using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>Tiny ViT checkpoints and synthetic 8x8 image tasks for the fine-tuning tests (no real data, no pre-training).</summary>
public static class VitFinetuneFixtures
{
    public static VitConfig Config => new()
    {
        ImageSize = 8, PatchSize = 4, NumChannels = 1, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 32,
        InitializerRange = 0.1f,
    };

    /// <summary>A randomly initialised tiny ViT with the masked-patch head (as a self-supervised pre-training leaves it).</summary>
    public static void WriteCheckpoint(string folder, ulong seed, VitHeads? heads = null)
    {
        using var p = new VitParameters(new CpuBackend(), new VitParameterLayout(Config, heads ?? VitHeads.MaskedImageModeling));
        p.Initialize(seed);
        VitCheckpoint.Save(folder, p);
    }

    /// <summary>
    /// Three classes told apart by where the light is: top half bright, bottom half bright, or all
    /// mid-grey; noisy pixels. Vertical position survives the crop (2 pixels) and flip augmentation.
    /// </summary>
    public static LabeledImages Images(int count, int seed)
    {
        var rng = new System.Random(seed);
        var pixels = new byte[count * 64];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % 3;
            labels[i] = label;
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                {
                    int mean = label switch { 0 => y < 4 ? 210 : 30, 1 => y < 4 ? 30 : 210, _ => 120 };  // class 2: uniform grey
                    pixels[i * 64 + y * 8 + x] = (byte)Math.Clamp(mean + rng.Next(-40, 41), 0, 255);
                }
        }
        return new LabeledImages(pixels, labels, 8, 8, 1, 3);
    }

    public static VisionTask Task(int seed, int train = 60, int validation = 30, int test = 30) =>
        VisionTask.FromImages("light", Images(train, seed), Images(validation, seed + 1), Images(test, seed + 2));

    public static string TempFolder(string tag) => FinetuneFixtures.TempFolder(tag);
}

public class VitFinetuneTests
{
    private static byte[] Bytes(NativeSparsity.Engine.Tensors.Tensor t)
    {
        var b = new byte[t.Length];
        t.Storage.Backend.CopyToHost<byte>(t, b);
        return b;
    }

    [Test]
    public void FineTuningLearnsASeparableTaskAboveMajority()
    {
        int seed = TestUtil.FreshSeed();
        var task = VitFinetuneFixtures.Task(seed, train: 94);   // 94 = 11 batches of 8 + one of 6: a partial batch every epoch
        string root = VitFinetuneFixtures.TempFolder("vit-ft");
        try
        {
            VitFinetuneFixtures.WriteCheckpoint(root, (ulong)seed);
            var be = new CpuBackend();
            using var p = VitFinetuner.LoadForTask(root, be, task.NumLabels, (ulong)seed);
            var settings = new VitFinetuneSettings { Epochs = 6, BatchSize = 8, LearningRate = 5e-3f, Seed = (ulong)seed };
            using var tuner = new VitFinetuner(p, task, settings);
            Assert.That(tuner.StepsPerEpoch, Is.EqualTo(12));
            double before = tuner.Evaluate();
            var epochs = tuner.Train();
            Assert.That(epochs, Has.Count.EqualTo(6));
            Assert.That(epochs.All(e => e.Metrics.ContainsKey(VisionTask.Metric)), "evaluated after every epoch");
            Assert.That(tuner.Step, Is.EqualTo(72));
            double majority = task.MajorityBaseline(task.Validation);
            double accuracy = epochs[^1].Metrics[VisionTask.Metric];
            Assert.That(accuracy, Is.GreaterThan(majority + 0.2), $"validation accuracy {accuracy} (before {before}, majority {majority})");
            Assert.That(tuner.Test(), Is.GreaterThan(majority + 0.2), "test split");
            Assert.That(epochs[^1].TrainLoss, Is.LessThan(epochs[0].TrainLoss));
            // Accuracy counts each image once, whatever the batch size.
            Assert.That(tuner.Accuracy(task.Validation.Subset(new[] { 0 })), Is.EqualTo(0).Or.EqualTo(1));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void SameSeedGivesTheSameRunAndTheHeadIsFresh()
    {
        int seed = TestUtil.FreshSeed();
        var task = VitFinetuneFixtures.Task(seed, train: 20, validation: 9);
        string root = VitFinetuneFixtures.TempFolder("vit-ft-seed");
        try
        {
            // A checkpoint that already has a 3-way classifier: fine-tuning still starts a fresh head from its seed.
            VitFinetuneFixtures.WriteCheckpoint(root, (ulong)seed + 7, VitHeads.Classification(3));
            var be = new CpuBackend();
            float[] Run()
            {
                using var p = VitFinetuner.LoadForTask(root, be, 3, (ulong)seed);
                using var tuner = new VitFinetuner(p, task, new VitFinetuneSettings { Epochs = 1, BatchSize = 8, LearningRate = 1e-3f, Seed = (ulong)seed });
                tuner.Train();
                return TestUtil.Download(p.Values);
            }
            Assert.That(Run(), Is.EqualTo(Run()), "bit-identical for the same seed");
            using var loaded = VitFinetuner.LoadForTask(root, be, 3, (ulong)seed);
            using var fresh = new VitParameters(be, loaded.Layout);
            fresh.Initialize((ulong)seed);
            Assert.That(TestUtil.Download(loaded["classifier.weight"]), Is.EqualTo(TestUtil.Download(fresh["classifier.weight"])));
            // The backbone comes from the file, not from the seed.
            using var saved = new VitParameters(be, loaded.Layout);
            saved.Initialize((ulong)seed + 7);
            const string query = "vit.encoder.layer.0.attention.attention.query.weight";
            Assert.That(TestUtil.Download(loaded[query]), Is.EqualTo(TestUtil.Download(saved[query])));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void MaskedFineTuningKeepsPrunedWeightsExactlyZeroInTheSavedCheckpoint()
    {
        int seed = TestUtil.FreshSeed();
        var task = VitFinetuneFixtures.Task(seed, train: 30, validation: 9);
        string root = VitFinetuneFixtures.TempFolder("vit-ft-mask");
        try
        {
            string ckpt = Path.Combine(root, "pretrained"), output = Path.Combine(root, "out"), maskPath = Path.Combine(root, "mask.safetensors");
            VitFinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed);
            Assert.That(VitFinetuneRun.IsVitCheckpoint(ckpt));
            var result = VitFinetuneRun.Run(new FinetuneRunOptions
            {
                Checkpoint = ckpt, Task = VisionTask.FashionMnistName, Sparsity = 0.5, SaveMaskPath = maskPath, OutputFolder = output, Save = true, Quiet = true,
                VitTrain = new VitFinetuneSettings { Epochs = 2, BatchSize = 8, LearningRate = 3e-3f, Seed = (ulong)seed },
            }, task);
            foreach (var f in new[] { "metrics.json", "metrics.csv", "checkpoint/config.json", "checkpoint/model.safetensors" })
                Assert.That(File.Exists(Path.Combine(output, f)), $"{f} should be written");
            Assert.That(File.Exists(maskPath));

            var host = new CpuBackend();
            using var pre = VitCheckpoint.Load(ckpt, host, VitHeads.Classification(3)).Parameters;
            var mask = Masks.GlobalMagnitude(pre.PrunableSet(), 0.5);
            var keep = Bytes(mask.Keep);
            long pruned = keep.LongCount(b => b == 0);
            Assert.That(result.PrunedCount, Is.EqualTo(pruned));
            Assert.That(pruned, Is.EqualTo(pre.Layout.PrunableLength / 2).Within(1));

            using var tuned = VitCheckpoint.Load(Path.Combine(output, "checkpoint"), host, VitHeads.Classification(3)).Parameters;
            var before = TestUtil.Download(pre.PrunableValues);
            var after = TestUtil.Download(tuned.PrunableValues);
            int changedKept = 0;
            for (int i = 0; i < keep.Length; i++)
            {
                if (keep[i] == 0) Assert.That(BitConverter.SingleToInt32Bits(after[i]), Is.Zero, $"pruned weight {i} ({mask.Set.Describe(i)}) must stay exactly +0");
                else if (after[i] != before[i]) changedKept++;
            }
            Assert.That(changedKept, Is.GreaterThan(keep.Length / 4), "kept weights were trained");
            // The saved mask file reloads to the same bytes.
            var reloaded = MaskFile.Load(maskPath, pre.PrunableSet(), host.Allocate(NativeSparsity.Engine.Tensors.DType.U8, keep.Length));
            Assert.That(Bytes(reloaded.Keep), Is.EqualTo(keep));
            StringAssert.Contains("\"model\": \"vit\"", File.ReadAllText(Path.Combine(output, "metrics.json")));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void BadInputsGiveClearErrors()
    {
        int seed = TestUtil.FreshSeed();
        var task = VitFinetuneFixtures.Task(seed, train: 6, validation: 3);
        string root = VitFinetuneFixtures.TempFolder("vit-ft-bad");
        try
        {
            VitFinetuneFixtures.WriteCheckpoint(root, (ulong)seed);
            var be = new CpuBackend();
            using var wrongLabels = VitFinetuner.LoadForTask(root, be, 4, 1);
            var e = Assert.Throws<ArgumentException>(() => new VitFinetuner(wrongLabels, task, new VitFinetuneSettings()));
            StringAssert.Contains("4 labels", e!.Message);
            using var p = VitFinetuner.LoadForTask(root, be, 3, 1);
            Assert.Throws<ArgumentException>(() => new VitFinetuner(p, task, new VitFinetuneSettings { LearningRate = 0 }));
            var pixels = Enumerable.Range(0, 3 * 144).Select(i => (byte)i).ToArray();
            var big = VisionTask.FromImages("big", new LabeledImages(pixels, new[] { 0, 1, 2 }, 12, 12, 1, 3),
                                            new LabeledImages(pixels[..144], new[] { 0 }, 12, 12, 1, 3));
            e = Assert.Throws<ArgumentException>(() => new VitFinetuner(p, big, new VitFinetuneSettings()));
            StringAssert.Contains("12x12x1", e!.Message);
            Assert.Throws<ArgumentException>(() => new VitDataOptions().Load("supersense"));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
