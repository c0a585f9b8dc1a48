using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>`study abrupt` and `study ssl-vs-sl` for a ViT, on tiny synthetic images.</summary>
public class VitPretrainStudyTests
{
    private static void AssertPngs(string folder, IEnumerable<string> names)
    {
        foreach (var png in names)
        {
            var bytes = File.ReadAllBytes(Path.Combine(folder, png));
            Assert.That(bytes.Length, Is.GreaterThan(1000), png);
            Assert.That(bytes.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), png);
        }
    }

    [Test]
    public void AbruptStudyForAVitWritesTheReport()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-vit-abrupt-" + Guid.NewGuid().ToString("N"));
        try
        {
            var data = (VitPretrainTests.Synthetic(40, seed), VitPretrainTests.Synthetic(12, seed + 1));
            var template = VitPretrainTests.Options("", VitObjective.MaskedPatches, seed);
            string summary = AbruptStudy.RunVit(template, new[] { 0.5, 1.0 }, root, "nsparse study abrupt --model vit ...", data);
            string md = File.ReadAllText(summary);
            Assert.That(md, Does.Contain("| 0.5 |").And.Contain("| 1 |").And.Contain("final masked-pixel R²").And.Contain("ViT preset **tiny**"));
            AssertPngs(root, new[] { "zeros_vs_step.png", "small_magnitude_vs_step.png", "probe_essential_sparsity_vs_step.png", "accuracy_vs_step.png" });
            Assert.That(File.ReadAllLines(Path.Combine(root, "abrupt.csv")), Has.Length.EqualTo(1 + 2 * 3), "probes at steps 0, 4, 8 of two runs");
            // The half-data run trained on half of each class (20 of 40 images).
            Assert.That(File.ReadAllText(Path.Combine(root, "runs", "fraction-0.5", "run.json")), Does.Contain("\"DataFraction\": 0.5"));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }

    [Test]
    public void SslVsSlStudyForAVitWritesTheReportWithFinalMetricsAndHistograms()
    {
        int seed = TestUtil.FreshSeed();
        string root = Path.Combine(Path.GetTempPath(), "nsparse-vit-sslsl-" + Guid.NewGuid().ToString("N"));
        try
        {
            var data = (VitPretrainTests.Synthetic(40, seed), VitPretrainTests.Synthetic(12, seed + 1));
            var template = VitPretrainTests.Options("", VitObjective.MaskedPatches, seed);
            string summary = SslVsSlStudy.RunVit(template, root, "nsparse study ssl-vs-sl --model vit ...", data, new PixelBaselineOptions(Epochs: 2, BatchSize: 8));
            string md = File.ReadAllText(summary);
            Assert.That(md, Does.Contain("self-supervised (masked patches)").And.Contain("supervised (classification)")
                              .And.Contain("## Final held-out metrics").And.Contain("validation top-1 accuracy").And.Contain("logistic regression on the pixels")
                              .And.Contain("probe essential sparsity:"));
            AssertPngs(root, new[] { "zeros_vs_step.png", "small_magnitude_vs_step.png", "probe_essential_sparsity_vs_step.png", "accuracy_vs_step.png" });
            Assert.That(File.Exists(Path.Combine(root, "histogram_layer_0.png")), Is.True, "one encoder layer, one histogram");
            var hist = File.ReadAllLines(Path.Combine(root, "histograms.csv")).Skip(1).Select(l => l.Split(',')).ToList();
            foreach (var run in new[] { "ssl", "sl" })
                Assert.That(hist.Where(r => r[0] == run).Sum(r => long.Parse(r[4])), Is.EqualTo(4 * 16 * 16 + 2 * 16 * 64), $"{run}: every prunable weight in one bin");
            var csv = File.ReadAllLines(Path.Combine(root, "ssl_vs_sl.csv"));
            Assert.That(csv.Count(l => l.StartsWith("ssl,")), Is.EqualTo(3));
            Assert.That(csv.Count(l => l.StartsWith("sl,")), Is.EqualTo(3));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }
}
