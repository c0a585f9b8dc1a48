using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class LotteryStudyTests
{
    [Test]
    public void StudyWritesTheReportTicketsAreNestedAndARerunSkipsFinishedRounds()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("lottery");
        try
        {
            string ckpt = Path.Combine(root, "pretrained");
            FinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed, hidden: 16, layers: 1);
            var task = FinetuneFixtures.ContainsApple(16, 8, seed);
            string report = Path.Combine(root, "report");
            var options = new EssentialStudyOptions
            {
                Checkpoint = ckpt, TaskObjects = new[] { task }, Levels = new[] { 0.2, 0.4 }, Seeds = 1, Quiet = true, ReportFolder = report,
                Train = new FinetuneSettings { Epochs = 1, BatchSize = 8, LearningRate = 1e-3f, Seed = (ulong)seed },
            };
            var rounds = LotteryStudy.Schedule(options.Levels, 0.25);
            Assert.That(rounds, Is.EqualTo(new[] { 0.2, 0.4 }), "25% of the rest from 20% overshoots 40%: clamped to the target");
            string summary = LotteryStudy.Run(options, 0.25);
            foreach (var f in new[] { "lottery_summary.md", "lottery.csv", "mask_similarity.csv", "lth_minus_omp.png",
                                      "similarity_cosine_0.2.png", "similarity_jaccard_0.4.png" })
                Assert.That(File.Exists(Path.Combine(report, f)), $"{f} should be written");
            StringAssert.Contains("Chance: cosine", File.ReadAllText(summary));
            Assert.That(File.ReadAllLines(Path.Combine(report, "lottery.csv")), Has.Length.EqualTo(4), "header, dense, two rounds");

            // Tickets: the requested sparsity, nested, and not the one-shot mask of the pre-trained weights.
            var host = new CpuBackend();
            using var pre = BertCheckpoint.Load(ckpt, host, BertHeads.SequenceClassification(2)).Parameters;
            var set = pre.PrunableSet();
            MaskSet Load(double l) => MaskFile.Load(LotteryStudy.MaskPath(report, task.Name, l), set, host.Allocate(DType.U8, checked((int)set.Count)));
            var m20 = Load(0.2);
            var m40 = Load(0.4);
            Assert.That(m20.PrunedCount(), Is.EqualTo((long)Math.Round(0.2 * set.Count)));
            Assert.That(m40.PrunedCount(), Is.EqualTo((long)Math.Round(0.4 * set.Count)));
            var k20 = m20.Keep.U8Span().ToArray();
            var k40 = m40.Keep.U8Span().ToArray();
            for (int i = 0; i < k20.Length; i++)
                if (k20[i] == 0) Assert.That(k40[i], Is.Zero, $"weight {i} pruned at 20% must stay pruned at 40%");
            // The round-2 cell trained under the 40% ticket; the cell reports what it pruned.
            var cell = EssentialStudy.TryReadCell(EssentialStudy.CellPath(report, task.Name, LotteryStudy.Lth, 0.4, 0))!;
            Assert.That(cell.Pruned, Is.EqualTo(m40.PrunedCount()));

            // Rerun: every round and OMP cell is skipped; removing the last round reruns only it.
            var files = Directory.GetFiles(report, "*", SearchOption.AllDirectories).Where(f => (f.EndsWith(".json") && !f.EndsWith("study.json")) || f.EndsWith(".safetensors")).ToArray();
            var stamps = files.ToDictionary(f => f, File.GetLastWriteTimeUtc);
            string removed = EssentialStudy.CellPath(report, task.Name, LotteryStudy.Lth, 0.4, 0);
            File.Delete(removed);
            LotteryStudy.Run(options, 0.25);
            foreach (var (f, t) in stamps)
                if (f != removed) Assert.That(File.GetLastWriteTimeUtc(f), Is.EqualTo(t), $"{f} should have been skipped");
            Assert.That(File.Exists(removed), "the missing round should run again");
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void ScheduleReachesEveryTargetPruningARateOfTheRest()
    {
        var r = LotteryStudy.Schedule(new[] { 0.1, 0.3 }, 0.1);
        Assert.That(r, Is.EqualTo(new[] { 0.1, 0.19, 0.271, 0.3 }));
        Assert.That(LotteryStudy.Schedule(new[] { 0.1, 0.2, 0.3, 0.4, 0.5 }, 0.1), Is.EqualTo(new[] { 0.1, 0.19, 0.2, 0.28, 0.3, 0.37, 0.4, 0.46, 0.5 }));
        Assert.Throws<ArgumentException>(() => LotteryStudy.Schedule(new[] { 0.1 }, 1.0));
    }
}
