using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class VitFinetuneStudyTests
{
    [Test]
    public void EssentialStudyOfAViTWritesTheReportAndARerunRunsNothing()
    {
        int seed = TestUtil.FreshSeed();
        string root = VitFinetuneFixtures.TempFolder("vit-essential");
        try
        {
            string ckpt = Path.Combine(root, "pretrained");
            VitFinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed);
            var task = VitFinetuneFixtures.Task(seed, train: 24, validation: 12, test: 9);
            string report = Path.Combine(root, "report");
            var options = new EssentialStudyOptions
            {
                Model = StudyModel.Vit, Checkpoint = ckpt, Levels = new[] { 0.3, 0.6 }, Seeds = 2, Quiet = true, ReportFolder = report,
                Vit = new VitStudySettings { Task = task, Train = new VitFinetuneSettings { Epochs = 1, BatchSize = 8, LearningRate = 3e-3f, Seed = (ulong)seed } },
            };
            string summary = EssentialStudy.Run(options);
            Assert.That(summary, Is.EqualTo(Path.Combine(report, "summary.md")));
            foreach (var f in new[] { "summary.md", "cells.csv", "summary.csv", "drop_vs_sparsity.png", "pruned_by_component.png", "pruned_by_component.csv", "study.json" })
                Assert.That(File.Exists(Path.Combine(report, f)), $"{f} should be written");
            var cellFiles = Directory.GetFiles(Path.Combine(report, "cells"), "*.json", SearchOption.AllDirectories);
            Assert.That(cellFiles, Has.Length.EqualTo(6), "(dense + two OMP levels) x two seeds");
            var rows = File.ReadAllLines(Path.Combine(report, "cells.csv")).Skip(1).Select(l => l.Split(',')).ToList();
            Assert.That(rows, Has.Count.EqualTo(6));
            Assert.That(rows.All(r => r[0] == "light" && r[5] == "accuracy"));
            Assert.That(rows.Where(r => r[1] == "omp" && r[2] == "0.6").All(r => long.Parse(r[8]) > 0), "OMP cells prune");
            var dense = EssentialStudy.TryReadCell(EssentialStudy.CellPath(report, "light", EssentialStudy.Dense, 0, 0))!;
            Assert.That(dense.Metrics.ContainsKey("test_accuracy"), "dense cells measure the test split");
            Assert.That(dense.Value, Is.InRange(0.0, 1.0));

            string md = File.ReadAllText(summary);
            StringAssert.Contains("Essential sparsity of a pre-trained ViT", md);
            StringAssert.Contains("pixel logistic regression", md);
            StringAssert.Contains("majority class", md);
            StringAssert.Contains("train / validation", md);
            // The ViT's Q, K, V are named attention.attention.*: the per-component chart must see them.
            var components = File.ReadAllLines(Path.Combine(report, "pruned_by_component.csv"));
            Assert.That(components, Has.Length.EqualTo(3), "header + two layers");
            Assert.That(components.Skip(1).Select(l => l.Split(',')).All(c => c.Skip(1).Sum(double.Parse) > 0));
            Assert.That(components.Skip(1).Any(l => double.Parse(l.Split(',')[1]) > 0), "Q is recognised");

            // A second run reads every cell and trains nothing.
            var stamps = cellFiles.ToDictionary(f => f, File.GetLastWriteTimeUtc);
            EssentialStudy.Run(options);
            foreach (var (f, t) in stamps) Assert.That(File.GetLastWriteTimeUtc(f), Is.EqualTo(t), $"{f} should have been skipped");
            // Other fine-tuning settings would mix incomparable cells: refused.
            Assert.Throws<InvalidOperationException>(() => EssentialStudy.Run(options with { Vit = options.Vit with { Train = options.Vit.Train with { LearningRate = 1e-3f } } }));
            // A ViT study refuses a folder that is not a ViT checkpoint.
            Assert.Throws<ArgumentException>(() => EssentialStudy.Run(options with { Checkpoint = root, ReportFolder = Path.Combine(root, "other") }));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}

public class FinetuneStudyCommandTests
{
    [Test]
    public void FineTuningStudyOptionsHaveOneOptionPerName()
    {
        // Two options of one name on a command: the parser hands the value to the first, so the study's
        // fine-tuning --lr and --batch-size would silently set the pre-training's instead.
        var study = NativeSparsity.Experiments.Commands.StudyCommand.Build();
        foreach (var name in new[] { "essential", "nm", "lottery" })
        {
            var cmd = study.Subcommands.Single(c => c.Name == name);
            var duplicates = cmd.Options.GroupBy(o => o.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.That(duplicates, Is.Empty, $"study {name}");
        }
        var parsed = study.Parse(new[] { "essential", "--model", "vit", "--lr", "5e-4", "--batch-size", "50" });
        Assert.That(parsed.Errors, Is.Empty);
        var essential = study.Subcommands.Single(c => c.Name == "essential");
        Assert.That(parsed.GetValue((System.CommandLine.Option<float>)essential.Options.Single(o => o.Name == "--lr")), Is.EqualTo(5e-4f));
    }

    [Test]
    public void TheMainJobDefaultsToTheBuiltInMiniLmAndTheOtherStudiesToTheirOwnModel()
    {
        var study = NativeSparsity.Experiments.Commands.StudyCommand.Build();
        string Default(string command, string option)
        {
            var cmd = study.Subcommands.Single(c => c.Name == command);
            var parsed = study.Parse(new[] { command });
            Assert.That(parsed.Errors, Is.Empty);
            return parsed.GetValue((System.CommandLine.Option<string>)cmd.Options.Single(o => o.Name == option))!;
        }
        Assert.That(Default("essential", "--checkpoint"), Is.EqualTo("minilm-l6"));
        Assert.That(Default("essential", "--batching"), Is.EqualTo("shuffled"));
        Assert.That(Default("lottery", "--checkpoint"), Is.EqualTo(NativeSparsity.Experiments.Commands.StudyCommand.PretrainCheckpoint));
        Assert.That(Default("nm", "--checkpoint"), Is.EqualTo(NativeSparsity.Experiments.Commands.StudyCommand.PretrainCheckpoint));
        Assert.That(study.Parse(new[] { "essential", "--batching", "sorted" }).Errors, Is.Not.Empty, "an unknown batching is a parse error");
    }
}
