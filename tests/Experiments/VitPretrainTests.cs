using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>ViT pre-training on tiny synthetic images (8x8, one channel, patch 4, hidden 16): learning, resume, probe log.</summary>
public class VitPretrainTests
{
    private const int Side = 8, Classes = 4;

    /// <summary>
    /// Class c: a bright 4x4 block in quadrant c on a background of level 20 + 30c, plus noise. A quadrant
    /// is one patch, so the class shows in any unmasked patch (and predicts the hidden ones) and in the
    /// mean over patches (what uniform attention sees).
    /// </summary>
    internal static LabeledImages Synthetic(int count, int seed)
    {
        var rng = new System.Random(seed);
        var pixels = new byte[count * Side * Side];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int c = i % Classes;
            labels[i] = c;
            for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
            {
                bool bright = (y / 4) * 2 + (x / 4) == c;
                pixels[i * Side * Side + y * Side + x] = (byte)Math.Clamp((bright ? 220 : 20 + 30 * c) + rng.Next(-15, 16), 0, 255);
            }
        }
        return new LabeledImages(pixels, labels, Side, Side, 1, Classes);
    }

    internal static VitPretrainRunOptions Options(string folder, VitObjective objective, int seed, long steps = 8) => new()
    {
        OutputFolder = folder, Objective = objective, Preset = "tiny", PatchSize = 4, Layers = 1, Hidden = 16, Quiet = true,
        Train = new PretrainSettings { BatchSize = 8, Steps = steps, LearningRate = 3e-3f, WarmupSteps = 2, WeightDecay = 0.05f, Seed = (ulong)seed },
        Probe = new ProbeSettings { Every = 4, OmpEvery = 4, EvalBatches = 2, Levels = new[] { 0.3, 0.6, 0.9 } },
        CheckpointEvery = 4, KeepLast = 2, LogEvery = 1,
    };

    private static string TempFolder(string name) => Path.Combine(Path.GetTempPath(), $"nsparse-vit-{name}-" + Guid.NewGuid().ToString("N"));

    [TestCase(VitObjective.Supervised)]
    [TestCase(VitObjective.MaskedPatches)]
    public void LossFallsOnALearnableSet(VitObjective objective)
    {
        int seed = TestUtil.FreshSeed();
        using var backend = new CpuBackend();
        var train = Synthetic(64, seed);
        var validation = Synthetic(24, seed + 1);
        var o = Options("", objective, seed, steps: 80);
        // Pixel regression is less stable than classification at this size: a smaller rate.
        o = o with { Train = o.Train with { BatchSize = 16, LearningRate = objective == VitObjective.Supervised ? 5e-3f : 2e-3f, WarmupSteps = 5 } };
        var cfg = VitPretrainRun.ConfigFor(o, train);
        var heads = objective == VitObjective.Supervised ? VitHeads.Classification(Classes) : VitHeads.MaskedImageModeling;
        using var parameters = new VitParameters(backend, new VitParameterLayout(cfg, heads));
        parameters.Initialize((ulong)seed);
        // Without augmentation: a 2-pixel shift of an 8x8 image moves a quadrant across patches, which makes the task much harder.
        using var trainer = new VitPretrainer(backend, parameters, o.Train, objective, train, validation, PixelNormalization.FromImages(train), 0.5,
                                              Augmentation.None);
        var before = trainer.EvaluateHeldOut(10);
        var losses = Enumerable.Range(0, 80).Select(_ => trainer.TrainStep().Loss).ToList();
        var after = trainer.EvaluateHeldOut(10);
        // Per-batch losses of 16 images (2 hidden patches each for the pixel task) swing by ~15%; compare
        // averages over many batches so a seed that learns slowly is not mistaken for one that does not learn.
        Assert.That(losses.TakeLast(20).Average(), Is.LessThan(0.9 * losses.Take(10).Average()), $"seed {seed}: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
        Assert.That(after.Loss, Is.LessThan(0.85 * before.Loss), $"seed {seed}: held-out loss {before.Loss} -> {after.Loss}");
        Assert.That(after.Predictions, Is.EqualTo(objective == VitObjective.Supervised ? 24 : 24 * 2), "every validation image (supervised) or 2 of 4 patches each");
        // 24 images: a model at chance (0.25) reaches 11 of them with probability ~1%; after 80 steps some
        // fresh seeds sit at exactly 12/24, so the bar is 11/24 rather than "above a half".
        if (objective == VitObjective.Supervised) Assert.That(after.Accuracy, Is.GreaterThanOrEqualTo(11 / 24.0), $"seed {seed}: top-1 on separable classes (chance 0.25)");
        else Assert.That(after.Accuracy, Is.GreaterThan(before.Accuracy).And.LessThanOrEqualTo(1.0), $"seed {seed}: masked-pixel R²");
    }

    [Test]
    public void MaskedPatchEvaluationIsMseAndRSquaredOfTheHiddenPixels()
    {
        // An independent recomputation: MSE from the model's predictions against the batch's hidden pixels.
        int seed = TestUtil.FreshSeed();
        using var backend = new CpuBackend();
        var train = Synthetic(16, seed);
        var validation = Synthetic(5, seed + 1);   // one batch of 8, padded with 3 ignored images
        var o = Options("", VitObjective.MaskedPatches, seed);
        using var parameters = new VitParameters(backend, new VitParameterLayout(VitPretrainRun.ConfigFor(o, train), VitHeads.MaskedImageModeling));
        parameters.Initialize((ulong)seed);
        var norm = PixelNormalization.FromImages(train);
        using var trainer = new VitPretrainer(backend, parameters, o.Train, VitObjective.MaskedPatches, train, validation, norm, 0.5);
        var eval = trainer.EvaluateHeldOut(1);
        var predicted = new float[trainer.Model.MaskedCount * 16];
        backend.CopyToHost<float>(trainer.Model.ReconstructedPatches, predicted);
        Assert.That(trainer.Model.MaskedCount, Is.EqualTo(5 * 2), "padding images hide no patch");
        var batch = new PatchBatcher(Side, Side, 1, 4, norm).MakeBatch(validation, Enumerable.Range(0, 5).ToArray(), 0, 0, augment: false);
        // The model returns the hidden patches' predictions in ascending row order of the fixed evaluation mask.
        var model = trainer.Model;
        double sse = 0, sum = 0, squares = 0;
        int m = 0, n = 0;
        var mask = PatchMaskPlan.Create(8, 4, 0.5, VitPretrainer.EvalMaskSeed, 0).Mask;
        var rows = Enumerable.Range(0, 5 * 4).Where(r => mask[r] != 0).ToArray();
        foreach (int row in rows)
        {
            for (int k = 0; k < 16; k++)
            {
                double t = batch.Patches[row * 16 + k], d = predicted[m * 16 + k] - t;
                sse += d * d; sum += t; squares += t * t; n++;
            }
            m++;
        }
        double mse = sse / n, mean = sum / n, sst = squares - n * mean * mean;
        Assert.That(eval.Loss, Is.EqualTo(mse).Within(1e-5 * mse));
        Assert.That(eval.Accuracy, Is.EqualTo(1 - sse / sst).Within(1e-5));
        Assert.That(model.MaskedCount, Is.EqualTo(m));
    }

    [TestCase(VitObjective.Supervised)]
    [TestCase(VitObjective.MaskedPatches)]
    public void ResumedRunMatchesUninterruptedRunBitwise(VitObjective objective)
    {
        int seed = TestUtil.FreshSeed();
        string root = TempFolder("resume");
        try
        {
            var data = (Synthetic(40, seed), Synthetic(12, seed + 1));
            string straight = Path.Combine(root, "straight"), interrupted = Path.Combine(root, "interrupted");
            VitPretrainRun.Run(Options(straight, objective, seed), data);
            // The interrupted run: the same run stopped after its step-4 checkpoint (its step-8 checkpoint and
            // the logs past step 4 are what a crash would leave half-written), then resumed.
            VitPretrainRun.Run(Options(interrupted, objective, seed), data);
            Directory.Delete(Path.Combine(interrupted, "checkpoints", "step-0000008"), recursive: true);
            File.AppendAllText(Path.Combine(interrupted, "train_log.csv"), "9,1,1,1,1,1\n");
            var summary = VitPretrainRun.Run(Options(interrupted, objective, seed) with { Resume = true }, data);
            Assert.That(summary.Steps, Is.EqualTo(8));
            foreach (var file in new[] { VitCheckpoint.WeightsFile, VitPretrainer.OptimizerFile })
                Assert.That(File.ReadAllBytes(Path.Combine(interrupted, "checkpoints", "step-0000008", file)),
                            Is.EqualTo(File.ReadAllBytes(Path.Combine(straight, "checkpoints", "step-0000008", file))), file);
            string[] Losses(string run) => File.ReadAllLines(Path.Combine(run, "train_log.csv")).Select(l => string.Join(",", l.Split(',').Take(4))).ToArray();
            Assert.That(Losses(interrupted), Is.EqualTo(Losses(straight)), "step, loss, lr, grad norm of every step");
            Assert.That(Losses(straight), Has.Length.EqualTo(9));
            string[] Probes(string run) => File.ReadAllLines(Path.Combine(run, "probe.csv")).Select(l => string.Join(",", l.Split(',').Where((_, i) => i != 1))).ToArray();
            Assert.That(Probes(interrupted), Is.EqualTo(Probes(straight)), "every probe but its timing");
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }

    [TestCase(VitObjective.Supervised)]
    [TestCase(VitObjective.MaskedPatches)]
    public void ProbeLogHoldsEveryMetric(VitObjective objective)
    {
        int seed = TestUtil.FreshSeed();
        string root = TempFolder("probe");
        try
        {
            var summary = VitPretrainRun.Run(Options(root, objective, seed), (Synthetic(40, seed), Synthetic(12, seed + 1)));
            var table = new ProbeTable(summary.ProbeCsv);
            Assert.That(table.Column("step"), Is.EqualTo(new double[] { 0, 4, 8 }));
            foreach (var column in new[] { "dense_loss", "dense_accuracy", "probe_essential_sparsity", "total", "zeros",
                                           "omp30_loss", "omp30_accuracy", "omp60_accuracy", "omp90_accuracy", "threshold_60" })
                Assert.That(table.Column(column).All(double.IsFinite), Is.True, column);
            Assert.That(table.Header.Count(h => h.StartsWith("abs_below_", StringComparison.Ordinal)), Is.GreaterThan(0));
            Assert.That(table.Column("total").Distinct().Single(), Is.EqualTo(4 * 16 * 16 + 2 * 16 * 64), "1 layer: 4c² + 2cI prunable weights");
            var accuracy = table.Column("dense_accuracy");
            if (objective == VitObjective.Supervised) Assert.That(accuracy.All(a => a >= 0 && a <= 1), Is.True);
            else Assert.That(accuracy.All(a => a <= 1), Is.True, "R² is at most 1");
            Assert.That(File.ReadAllLines(Path.Combine(root, "probe.jsonl")), Has.Length.EqualTo(3));
            Assert.That(File.ReadAllLines(Path.Combine(root, "probe_layers.csv")).Length, Is.GreaterThan(3));
            Assert.That(VitCheckpoint.ReadConfig(summary.LastCheckpoint).HiddenSize, Is.EqualTo(16), "the last checkpoint is a ViT model folder");
            Assert.That(VitPretrainer.ReadNormalization(summary.LastCheckpoint), Is.Not.Null);
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }

    [Test]
    public void BothObjectivesStartFromTheSameEncoderWeights()
    {
        int seed = TestUtil.FreshSeed();
        using var backend = new CpuBackend();
        var cfg = VitPretrainRun.ConfigFor(Options("", VitObjective.Supervised, seed), Synthetic(4, seed));
        using var a = new VitParameters(backend, new VitParameterLayout(cfg, VitHeads.Classification(Classes)));
        using var b = new VitParameters(backend, new VitParameterLayout(cfg, VitHeads.MaskedImageModeling));
        a.Initialize((ulong)seed); b.Initialize((ulong)seed);
        foreach (var slot in a.Layout.Slots.Where(s => VitCheckpoint.IsBackbone(s.Name)))
            Assert.That(TestUtil.Download(a[slot.Name]), Is.EqualTo(TestUtil.Download(b[slot.Name])), slot.Name);
    }

    [Test]
    public void DataFractionIsStratifiedAndDeterministic()
    {
        int seed = TestUtil.FreshSeed();
        var images = Synthetic(103, seed);
        var counts = images.ClassCounts();
        var picked = VitPretrainRun.FractionIndices(images, 0.3, (ulong)seed);
        Assert.That(picked, Is.EqualTo(VitPretrainRun.FractionIndices(images, 0.3, (ulong)seed)));
        Assert.That(picked, Is.Ordered.And.Unique);
        for (int c = 0; c < Classes; c++)
            Assert.That(picked.Count(i => images.Labels[i] == c), Is.EqualTo((int)Math.Round(0.3 * counts[c], MidpointRounding.AwayFromZero)), $"class {c}");
        Assert.That(VitPretrainRun.FractionIndices(images, 1.0, (ulong)seed), Is.EqualTo(Enumerable.Range(0, 103)));
    }

    [Test]
    public void BadOptionsGiveClearErrors()
    {
        var data = (Synthetic(8, 1), Synthetic(8, 2));
        string root = TempFolder("bad");
        try
        {
            Assert.That(() => VitPretrainRun.Run(Options(root, VitObjective.Supervised, 1) with { Preset = "mini" }, data),
                        Throws.ArgumentException.With.Message.Contains("ViT preset 'mini'"));
            Assert.That(() => VitPretrainRun.Run(Options(root, VitObjective.Supervised, 1) with { PatchSize = 3 }, data),
                        Throws.ArgumentException.With.Message.Contains("patch_size 3"));
            Assert.That(() => VitPretrainRun.Run(Options(root, VitObjective.MaskedPatches, 1) with { MaskRatio = 1.0 }, data),
                        Throws.ArgumentException.With.Message.Contains("mask ratio"));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }
}
