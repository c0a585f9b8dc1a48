using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class SslVsSlStudyTests
{
    private static string WriteCorpus(string folder, int seed)
    {
        // Words from WordNet glosses, so the small vocabulary also covers some of the supervised text.
        var rng = new System.Random(seed);
        string[] subjects = { "a person", "the act", "an animal", "a plant", "the state", "a group" };
        string[] verbs = { "of", "used for", "that has", "relating to", "having", "made of" };
        string[] objects = { "a body", "the water", "something", "a place", "the time", "an object" };
        var docs = new List<string>();
        for (int d = 0; d < 400; d++)
            docs.Add(string.Join(" ", Enumerable.Range(0, 3).Select(_ =>
                $"{subjects[rng.Next(subjects.Length)]} {verbs[rng.Next(verbs.Length)]} {objects[rng.Next(objects.Length)]}.")));
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "corpus.txt");
        File.WriteAllText(path, string.Join("\n\n", docs));
        return path;
    }

    private static PretrainRunOptions Template(string root, string corpus, int seed, long steps = 8) => new()
    {
        OutputFolder = "", Preset = "tiny", Layers = 1, Hidden = 64, VocabSize = 96,
        Data = new[] { corpus }, CacheFolder = Path.Combine(root, "cache"), Quiet = true,
        Train = new PretrainSettings { BatchSize = 4, SequenceLength = 16, Steps = steps, LearningRate = 1e-3f, WarmupSteps = 2, Seed = (ulong)seed },
        Probe = new ProbeSettings { Every = 4, OmpEvery = 8, EvalBatches = 1, Levels = new[] { 0.3, 0.6, 0.9 } },
        CheckpointEvery = 4, KeepLast = 2,
    };

    [Test]
    public void StudyWritesTheReportAndPngs_ThenReusesFinishedRuns()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-sslsl-" + Guid.NewGuid().ToString("N"));
        try
        {
            var template = Template(root, WriteCorpus(Path.Combine(root, "text"), seed), seed);
            var sl = new SslVsSlOptions { MaxExamplesPerSplit = 40, SupervisedProbeBatches = 3 };
            string report = Path.Combine(root, "report");
            string summary = SslVsSlStudy.Run(template, sl, report, "nsparse study ssl-vs-sl ...");
            string md = File.ReadAllText(summary);
            Assert.That(md, Does.Contain("self-supervised (MLM)").And.Contain("supervised (supersense)").And.Contain("exact zeros")
                .And.Contain("14.37%").And.Contain("nsparse study ssl-vs-sl"));
            var pngs = new[] { "zeros_vs_step.png", "small_magnitude_vs_step.png", "relative_small_vs_step.png", "probe_essential_sparsity_vs_step.png",
                               "accuracy_vs_step.png", "histogram_layer_0.png" };
            foreach (var png in pngs)
            {
                var bytes = File.ReadAllBytes(Path.Combine(report, png));
                Assert.That(bytes.Length, Is.GreaterThan(1000), png);
                Assert.That(bytes.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), png);
            }
            Assert.That(File.Exists(Path.Combine(report, "histogram_layer_1.png")), Is.False, "one layer, one histogram chart");

            // Both runs probe on the same schedule into the same probe.csv format.
            var ssl = new ProbeTable(Path.Combine(report, "runs", "ssl", "probe.csv"));
            var sup = new ProbeTable(Path.Combine(report, "runs", "sl", "probe.csv"));
            Assert.That(sup.Header, Is.EqualTo(ssl.Header));
            Assert.That(sup.Column("step"), Is.EqualTo(new double[] { 0, 4, 8 }));
            Assert.That(ssl.Column("step"), Is.EqualTo(new double[] { 0, 4, 8 }));
            Assert.That(sup.Column("total"), Is.EqualTo(ssl.Column("total")), "the same prunable encoder matrices");
            // Same seed: both start from identical encoder weights, so the step-0 statistics agree.
            Assert.That(sup.Column("abs_below_1e-3")[0], Is.EqualTo(ssl.Column("abs_below_1e-3")[0]));
            Assert.That(sup.Column("threshold_60")[0], Is.EqualTo(ssl.Column("threshold_60")[0]));
            var acc = sup.Column("dense_accuracy");
            Assert.That(double.IsNaN(acc[1]) && acc[0] is >= 0 and <= 1 && acc[2] is >= 0 and <= 1, Is.True, "OMP and dev accuracy only at steps 0 and 8");
            Assert.That(sup.Column("probe_essential_sparsity")[2], Is.AnyOf(0.0, 0.3, 0.6, 0.9));

            var csv = File.ReadAllLines(Path.Combine(report, "ssl_vs_sl.csv"));
            Assert.That(csv.Length, Is.EqualTo(1 + 2 * 3));
            Assert.That(csv.Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(new[] { "ssl", "ssl", "ssl", "sl", "sl", "sl" }));
            // Histogram rows of a run and layer add up to the layer's prunable weights (64x64 x4 + 64x256 x2).
            var rows = File.ReadAllLines(Path.Combine(report, "histograms.csv")).Skip(1).Select(l => l.Split(',')).ToList();
            foreach (var run in new[] { "ssl", "sl" })
                Assert.That(rows.Where(r => r[0] == run && r[1] == "0").Sum(r => long.Parse(r[4])), Is.EqualTo(4 * 64 * 64 + 2 * 64 * 256), run);

            // A second call reuses both finished runs.
            var before = (File.ReadAllText(ssl.Path), File.ReadAllText(sup.Path));
            SslVsSlStudy.Run(template, sl, report, "nsparse study ssl-vs-sl ...");
            Assert.That((File.ReadAllText(ssl.Path), File.ReadAllText(sup.Path)), Is.EqualTo(before));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void SupervisedRunResumedFromACheckpointMatchesTheUninterruptedRunBitwise()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-slresume-" + Guid.NewGuid().ToString("N"));
        try
        {
            // 11 training examples with batch 4: the stream crosses epoch boundaries inside batches.
            var template = Template(root, WriteCorpus(Path.Combine(root, "text"), seed), seed);
            SupervisedRunOptions Options(string folder, bool resume) => new()
            {
                Run = template with { OutputFolder = folder, Resume = resume, Probe = template.Probe with { EvalBatches = 2 } },
                MaxExamplesPerSplit = 11,
            };
            string straight = Path.Combine(root, "straight"), resumed = Path.Combine(root, "resumed");
            SupervisedRun.Run(Options(straight, false));
            // Interrupt: keep only the step-4 checkpoint and the logs written so far, then resume.
            SupervisedRun.Run(Options(resumed, false));
            Directory.Delete(Path.Combine(resumed, "checkpoints", "step-0000008"), true);
            var summary = SupervisedRun.Run(Options(resumed, true));
            Assert.That(summary.Steps, Is.EqualTo(8));
            string Weights(string run) => Path.Combine(run, "checkpoints", "step-0000008", BertCheckpoint.WeightsFile);
            Assert.That(File.ReadAllBytes(Weights(resumed)), Is.EqualTo(File.ReadAllBytes(Weights(straight))));
            string Opt(string run) => Path.Combine(run, "checkpoints", "step-0000008", BertPretrainer.OptimizerFile);
            Assert.That(File.ReadAllBytes(Opt(resumed)), Is.EqualTo(File.ReadAllBytes(Opt(straight))));
            // The probe logs agree except for the timing column.
            string[] Probe(string run) => File.ReadAllLines(Path.Combine(run, "probe.csv"))
                .Select(l => string.Join(",", l.Split(',').Where((_, i) => i != 1))).ToArray();
            Assert.That(Probe(resumed), Is.EqualTo(Probe(straight)));
            string[] Losses(string run) => File.ReadAllLines(Path.Combine(run, "train_log.csv")).Select(l => string.Join(",", l.Split(',').Take(4))).ToArray();
            Assert.That(Losses(resumed), Is.EqualTo(Losses(straight)));
            // The losses are real: the model learned something finite.
            Assert.That(Losses(straight).Skip(1).Select(l => double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)), Has.All.Matches<double>(double.IsFinite));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    private static (SupervisedPretrainer Trainer, BertParameters Parameters) Trainer(CpuBackend be, CompactBpeTokenizer tok, EncodedExample[] examples, int batch, ulong seed)
    {
        var cfg = BertConfig.FromPreset("tiny", tok.VocabSize, 64) with { NumHiddenLayers = 1, HiddenSize = 32, NumAttentionHeads = 1, IntermediateSize = 64 };
        var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.SequenceClassification(5)));
        p.Initialize(seed);
        var settings = new PretrainSettings { BatchSize = batch, SequenceLength = 16, Steps = 10, Seed = seed };
        return (new SupervisedPretrainer(be, p, settings, new TaskEncoder(tok, 16), examples, examples), p);
    }

    [Test]
    public void TrainingStreamIsOnePermutationPerEpoch_AndEvaluationIgnoresPadRows()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        var rng = new System.Random((int)seed);
        string[] words = { "a", "person", "of", "water", "place", "time", "the", "animal", "body", "used" };
        var texts = Enumerable.Range(0, 11).Select(_ => string.Join(" ", Enumerable.Range(0, 1 + rng.Next(12)).Select(_ => words[rng.Next(words.Length)]))).ToArray();
        var tok = CompactBpeTokenizer.Build(texts, 64);
        var examples = new TaskEncoder(tok, 16).Encode(texts.Select((t, i) => new TaskExample(t, null, i % 5)).ToList());
        using var be = new CpuBackend();
        var (four, p4) = Trainer(be, tok, examples, 4, seed);
        var (one, p1) = Trainer(be, tok, examples, 1, seed);
        using (p4) using (p1) using (four) using (one)
        {
            // 11 steps of 4 = 44 positions = 4 epochs, each a permutation of the 11 examples, not all in the same order.
            var stream = Enumerable.Range(0, 11).SelectMany(s => four.TrainIndices(s, 0)).ToArray();
            var epochs = Enumerable.Range(0, 4).Select(e => stream.Skip(11 * e).Take(11).ToArray()).ToArray();
            foreach (var e in epochs) Assert.That(e.OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 11)));
            Assert.That(epochs.Select(e => string.Join(",", e)).Distinct().Count(), Is.GreaterThan(1));
            Assert.That(four.TrainIndices(7, 0), Is.EqualTo(stream.Skip(28).Take(4)), "a pure function of the step");

            // Same weights: 3 batches of 4 (the last with one pad row) measure what 11 batches of 1 measure.
            var batched = four.EvaluateHeldOut(3);
            var single = one.EvaluateHeldOut(11);
            Assert.That(batched.Predictions, Is.EqualTo(11));
            Assert.That(single.Predictions, Is.EqualTo(11));
            Assert.That(batched.Accuracy, Is.EqualTo(single.Accuracy));
            Assert.That(batched.Loss, Is.EqualTo(single.Loss).Within(1e-5 * Math.Max(1, single.Loss)));
            Assert.That(batched.Loss, Is.GreaterThan(0));
            Assert.That(four.EvaluateHeldOut(1).Predictions, Is.EqualTo(4));
        }
    }
}
