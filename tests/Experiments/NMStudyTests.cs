using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class NMStudyTests
{
    [Test]
    public void StudyWritesTheReportAndARerunSkipsFinishedCells()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("nm");
        try
        {
            string ckpt = Path.Combine(root, "pretrained");
            FinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed, hidden: 16, layers: 1);
            var task = FinetuneFixtures.ContainsApple(16, 8, seed);
            string report = Path.Combine(root, "report");
            var options = new EssentialStudyOptions
            {
                Checkpoint = ckpt, TaskObjects = new[] { task }, Seeds = 1, Quiet = true, ReportFolder = report,
                Train = new FinetuneSettings { Epochs = 1, BatchSize = 8, LearningRate = 1e-3f, Seed = (ulong)seed },
            };
            var patterns = new[] { new NMPattern(2, 4), new NMPattern(1, 8) };
            string summary = NMStudy.Run(options, patterns);
            foreach (var f in new[] { "nm_summary.md", "nm_summary.csv", "nm_drop.png" })
                Assert.That(File.Exists(Path.Combine(report, f)), $"{f} should be written");
            var rows = File.ReadAllLines(Path.Combine(report, "nm_summary.csv")).Skip(1).Select(l => l.Split(',')).ToList();
            Assert.That(rows.Select(r => r[1]), Is.EqualTo(new[] { "dense", "2:4", "1:8" }));
            StringAssert.Contains("| 2:4 (50%)", File.ReadAllText(summary));

            // The N:M cells prune exactly (M - N) of every M weights.
            using var pre = BertCheckpoint.Load(ckpt, new CpuBackend(), BertHeads.SequenceClassification(2)).Parameters;
            long n = pre.Layout.PrunableLength;
            foreach (var p in patterns)
            {
                var cell = EssentialStudy.TryReadCell(EssentialStudy.CellPath(report, task.Name, p.Kind, p.Sparsity, 0))!;
                Assert.That(cell.Pruned, Is.EqualTo(n / p.M * (p.M - p.N)), $"{p}");
                // And the masks keep N per group.
                var keep = Masks.NM(pre.PrunableSet(), p.N, p.M).Keep.U8Span().ToArray();
                for (long g = 0; g < n / p.M; g++)
                {
                    int kept = 0;
                    for (int j = 0; j < p.M; j++) kept += keep[g * p.M + j] != 0 ? 1 : 0;
                    Assert.That(kept, Is.EqualTo(p.N), $"{p} group {g}");
                }
            }

            var cellFiles = Directory.GetFiles(Path.Combine(report, "cells"), "*.json", SearchOption.AllDirectories);
            Assert.That(cellFiles, Has.Length.EqualTo(3));
            var stamps = cellFiles.ToDictionary(f => f, File.GetLastWriteTimeUtc);
            string removed = EssentialStudy.CellPath(report, task.Name, patterns[1].Kind, patterns[1].Sparsity, 0);
            File.Delete(removed);
            NMStudy.Run(options, patterns);
            foreach (var (f, t) in stamps)
                if (f != removed) Assert.That(File.GetLastWriteTimeUtc(f), Is.EqualTo(t), $"{f} should have been skipped");
            Assert.That(File.Exists(removed), "the missing cell should run again");
            Assert.Throws<ArgumentException>(() => NMPattern.Parse("4:4"));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
