using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class EssentialStudyTests
{
    [Test]
    public void StudyWritesTheReportAndARerunSkipsFinishedCells()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("essential");
        try
        {
            string ckpt = Path.Combine(root, "pretrained");
            FinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed, hidden: 16, layers: 2);
            var task = FinetuneFixtures.ContainsApple(24, 10, seed);
            string report = Path.Combine(root, "report");
            var options = new EssentialStudyOptions
            {
                Checkpoint = ckpt, TaskObjects = new[] { task }, Levels = new[] { 0.3, 0.6 }, Seeds = 1, Random = true, Quiet = true, ReportFolder = report,
                Train = new FinetuneSettings { Epochs = 1, BatchSize = 8, LearningRate = 1e-3f, Seed = (ulong)seed },
            };
            string summary = EssentialStudy.Run(options);
            foreach (var f in new[] { "summary.md", "cells.csv", "summary.csv", "drop_vs_sparsity.png", "pruned_by_component.png", "pruned_by_component.csv" })
                Assert.That(File.Exists(Path.Combine(report, f)), $"{f} should be written");
            Assert.That(summary, Is.EqualTo(Path.Combine(report, "summary.md")));
            var cellFiles = Directory.GetFiles(Path.Combine(report, "cells"), "*.json", SearchOption.AllDirectories);
            Assert.That(cellFiles, Has.Length.EqualTo(5), "dense + two OMP + two random levels, one seed");
            Assert.That(File.ReadAllLines(Path.Combine(report, "cells.csv")), Has.Length.EqualTo(6));
            string md = File.ReadAllText(summary);
            StringAssert.Contains("essential sparsity", md);
            StringAssert.Contains("contains-apple", md);
            StringAssert.Contains("| bag-of-words baseline |", md);
            // The keyword task is what word counts solve: a 16-wide model after one epoch does not beat them, and the report says so.
            double words = BagOfWordsBaseline.Score(task, task.EvaluationSplit);
            double dense = double.Parse(File.ReadAllLines(Path.Combine(report, "cells.csv")).Skip(1).Select(l => l.Split(',')).Single(r => r[1] == "dense")[6],
                System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(md.Contains("does not beat the bag-of-words baseline on contains-apple"), Is.EqualTo(dense <= words), $"dense {dense}, words {words}");
            // OMP cells prune what they say; the chart CSV has one row per layer.
            var rows = File.ReadAllLines(Path.Combine(report, "cells.csv")).Skip(1).Select(l => l.Split(',')).ToList();
            var omp60 = rows.Single(r => r[1] == "omp" && r[2] == "0.6");
            var random60 = rows.Single(r => r[1] == "random" && r[2] == "0.6");
            Assert.That(long.Parse(omp60[8]), Is.GreaterThan(0));
            Assert.That(long.Parse(random60[8]), Is.EqualTo(long.Parse(omp60[8])), "random masks prune as many weights as OMP");
            Assert.That(File.ReadAllLines(Path.Combine(report, "pruned_by_component.csv")), Has.Length.EqualTo(3));

            // Rerun: finished cells are read, not trained again; a missing one is run.
            var stamps = cellFiles.ToDictionary(f => f, File.GetLastWriteTimeUtc);
            string removed = EssentialStudy.CellPath(report, task.Name, EssentialStudy.Omp, 0.3, 0);
            File.Delete(removed);
            EssentialStudy.Run(options);
            foreach (var (f, t) in stamps)
                if (f != removed) Assert.That(File.GetLastWriteTimeUtc(f), Is.EqualTo(t), $"{f} should have been skipped");
            Assert.That(File.Exists(removed), "the missing cell should run again");
            // Other fine-tuning settings would mix incomparable cells: refused.
            Assert.Throws<InvalidOperationException>(() => EssentialStudy.Run(options with { Train = options.Train with { LearningRate = 5e-4f } }));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Test]
    public void EssentialSparsityIsTheLastLevelBeforeTheDropLeavesEpsilon()
    {
        var s = new[] { 0.0, 0.1, 0.2, 0.3, 0.4, 0.5 };
        Assert.That(EssentialStudy.EssentialSparsity(s, new[] { 0, 0.2, -0.5, 0.9, 3, 0.1 }, 1.0), Is.EqualTo(0.3));
        Assert.That(EssentialStudy.EssentialSparsity(s, new[] { 0, 1.5, 0, 0, 0, 0 }, 1.0), Is.EqualTo(0.0));
        Assert.That(EssentialStudy.EssentialSparsity(s, new[] { 0, 0, 0, 0, 0, 0.99 }, 1.0), Is.EqualTo(0.5));
    }

    [Test]
    public void SharpDropPointIsWhereTheSlopeRisesMost()
    {
        var s = new[] { 0.0, 0.1, 0.2, 0.3, 0.4, 0.5 };
        // Flat, then slope 10 per unit from 0.3 on, then steeper: the biggest change is at 0.3.
        Assert.That(EssentialStudy.SharpDropPoint(s, new[] { 0, 0.1, 0.2, 0.3, 5.3, 6.3 }), Is.EqualTo(0.3));
        Assert.That(EssentialStudy.SharpDropPoint(new[] { 0.0, 0.5 }, new[] { 0.0, 1 }), Is.NaN);
        Assert.That(EssentialStudy.Std(new[] { 1.0, 3.0 }), Is.EqualTo(Math.Sqrt(2)).Within(1e-12));
        Assert.That(EssentialStudy.Std(new[] { 4.0 }), Is.Zero);
    }
}
