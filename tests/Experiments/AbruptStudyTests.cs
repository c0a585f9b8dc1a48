using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class AbruptStudyTests
{
    private static string WriteCorpus(string folder, int seed)
    {
        var rng = new System.Random(seed);
        string[] subjects = { "the cat", "a dog", "the bird", "my friend", "the teacher", "a child" };
        string[] verbs = { "sees", "likes", "follows", "finds", "calls", "helps" };
        string[] objects = { "the ball", "a tree", "the house", "the river", "a book", "the garden" };
        var docs = new List<string>();
        for (int d = 0; d < 600; d++)
            docs.Add(string.Join(" ", Enumerable.Range(0, 3).Select(_ =>
                $"{subjects[rng.Next(subjects.Length)]} {verbs[rng.Next(verbs.Length)]} {objects[rng.Next(objects.Length)]}.")));
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "corpus.txt");
        File.WriteAllText(path, string.Join("\n\n", docs));
        return path;
    }

    [Test]
    public void StudyRunsEndToEndAndWritesTheReport_ThenReusesFinishedRuns()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-abrupt-" + Guid.NewGuid().ToString("N"));
        try
        {
            string corpus = WriteCorpus(Path.Combine(root, "text"), seed);
            var template = new PretrainRunOptions
            {
                OutputFolder = "", Preset = "tiny", Layers = 1, Hidden = 64, VocabSize = 64,
                Data = new[] { corpus }, CacheFolder = Path.Combine(root, "cache"), Quiet = true,
                Train = new PretrainSettings { BatchSize = 4, SequenceLength = 16, Steps = 12, LearningRate = 1e-3f, WarmupSteps = 2, Seed = (ulong)seed },
                Probe = new ProbeSettings { Every = 4, OmpEvery = 8, EvalBatches = 1, Levels = new[] { 0.3, 0.6, 0.9 } },
                CheckpointEvery = 4, KeepLast = 1,
            };
            string report = Path.Combine(root, "report");
            string summary = AbruptStudy.Run(template, new[] { 0.5, 1.0 }, report, "nsparse study abrupt ...");
            Assert.That(File.ReadAllText(summary), Does.Contain("| 0.5 |").And.Contain("| 1 |"));
            Assert.That(File.ReadAllText(summary), Does.Contain("## Sudden rises").And.Contain("too few probes"), "four probes cannot be tested for a jump");
            foreach (var png in new[] { "zeros_vs_step.png", "small_magnitude_vs_step.png", "probe_essential_sparsity_vs_step.png", "mlm_accuracy_vs_step.png",
                                        "share_abs_below_1e-4_vs_step.png", "share_abs_below_1e-2_vs_step.png", "share_rel_std_below_0.01_vs_step.png",
                                        "global_thresholds_vs_step.png" })
            {
                var bytes = File.ReadAllBytes(Path.Combine(report, png));
                Assert.That(bytes.Length, Is.GreaterThan(1000), png);
                Assert.That(bytes.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), png);
            }
            var csv = File.ReadAllLines(Path.Combine(report, "abrupt.csv"));
            Assert.That(csv.Length, Is.EqualTo(1 + 2 * 4), "probes at steps 0, 4, 8, 12 for each of two fractions");
            var table = new ProbeTable(Path.Combine(report, "runs", "fraction-1", "probe.csv"));
            Assert.That(table.Column("step"), Is.EqualTo(new double[] { 0, 4, 8, 12 }));
            var omp = table.Column("omp30_accuracy");
            Assert.That(double.IsNaN(omp[1]) && !double.IsNaN(omp[2]) && !double.IsNaN(omp[3]), Is.True, "OMP only at steps 0, 8 and the last");
            Assert.That(Directory.GetDirectories(Path.Combine(report, "runs", "fraction-1", "checkpoints")), Has.Length.EqualTo(1), "keep-last 1");
            // A second call reuses the finished runs: the probe logs stay as they were.
            var before = File.ReadAllText(table.Path);
            AbruptStudy.Run(template, new[] { 0.5, 1.0 }, report, "nsparse study abrupt ...");
            Assert.That(File.ReadAllText(table.Path), Is.EqualTo(before));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void SharpestRiseFindsTheSteepestWindow()
    {
        var r = ProbeTable.SharpestRise(new double[] { 0, 10, 20, 30, 40 }, new double[] { 0, 1, 2, 30, 31 });
        Assert.That(r, Is.Not.Null);
        Assert.That((r!.Value.Start, r.Value.End), Is.EqualTo((20.0, 30.0)));
        Assert.That(r.Value.RatePerStep, Is.EqualTo(2.8).Within(1e-12));
    }
}
