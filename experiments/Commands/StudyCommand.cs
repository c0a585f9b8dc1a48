using System.CommandLine;
using System.Globalization;
using NativeSparsity.Experiments.Studies;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse study ...`: the paper's experiments, each writing one report folder.</summary>
public static class StudyCommand
{
    public static Command Build()
    {
        var study = new Command("study", "Run one of the paper's studies end to end and write a report folder (CSV, PNG plots, summary.md).");
        study.Subcommands.Add(BuildAbrupt());
        study.Subcommands.Add(BuildSslVsSl());
        return study;
    }

    private static Command BuildAbrupt()
    {
        var cmd = new Command("abrupt", "Pre-train with sparsity probing on several data fractions and chart zero and small-magnitude counts, probe essential sparsity and accuracy against step.");
        var o = new PretrainCommand.Options();
        o.AddTo(cmd);
        // Quick defaults: minutes on 2 CPU cores with the tiny preset.
        o.Steps.DefaultValueFactory = _ => 400;
        o.Batch.DefaultValueFactory = _ => 16;
        o.Seq.DefaultValueFactory = _ => 64;
        o.Lr.DefaultValueFactory = _ => 1e-3f;
        o.Warmup.DefaultValueFactory = _ => 40;
        o.ProbeEvery.DefaultValueFactory = _ => 20;
        o.OmpEvery.DefaultValueFactory = _ => 200;
        o.CheckpointEvery.DefaultValueFactory = _ => 100;
        var fractions = new Option<string>("--data-fractions") { Description = "Comma-separated data fractions, one run and one curve each (same steps for all).", DefaultValueFactory = _ => "0.6,1.0" };
        var output = new Option<string>("--out") { Description = "Report folder.", DefaultValueFactory = _ => "reports/abrupt" };
        cmd.Options.Add(fractions);
        cmd.Options.Add(output);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            var list = ParseFractions(r.GetValue(fractions)!);
            var template = o.Read(r, "", resume: true);
            string rerun = "nsparse " + string.Join(" ", r.Tokens.Select(t => t.Value.Contains(' ') ? $"\"{t.Value}\"" : t.Value));
            string summary = AbruptStudy.Run(template, list, r.GetValue(output)!, rerun);
            Console.WriteLine($"report: {summary}");
        }));
        return cmd;
    }

    private static Command BuildSslVsSl()
    {
        var cmd = new Command("ssl-vs-sl", "Pre-train the same model self-supervised (MLM) and supervised (WordNet supersense classification) with the same steps, seed and optimizer; chart their zero and small-magnitude counts, probe essential sparsity and final layer-wise |w| histograms.");
        var o = new PretrainCommand.Options();
        o.AddTo(cmd);
        // Quick defaults: a few minutes on 2 CPU cores with the tiny preset.
        o.Steps.DefaultValueFactory = _ => 300;
        o.Batch.DefaultValueFactory = _ => 16;
        o.Seq.DefaultValueFactory = _ => 64;
        o.Lr.DefaultValueFactory = _ => 1e-3f;
        o.Warmup.DefaultValueFactory = _ => 30;
        o.ProbeEvery.DefaultValueFactory = _ => 20;
        o.OmpEvery.DefaultValueFactory = _ => 100;
        o.CheckpointEvery.DefaultValueFactory = _ => 100;
        var task = new Option<string>("--task") { Description = "WordNet task of the supervised run (supersense: gloss -> lexicographer file, 45 classes).", DefaultValueFactory = _ => "supersense" };
        var maxExamples = new Option<int>("--max-examples") { Description = "Cap on the supervised task's examples per split (0: all).", DefaultValueFactory = _ => 0 };
        var slBatches = new Option<int>("--sl-probe-batches") { Description = "Dev batches per supervised probe evaluation.", DefaultValueFactory = _ => 16 };
        var output = new Option<string>("--out") { Description = "Report folder.", DefaultValueFactory = _ => "reports/ssl-vs-sl" };
        cmd.Options.Add(task);
        cmd.Options.Add(maxExamples);
        cmd.Options.Add(slBatches);
        cmd.Options.Add(output);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            if (r.GetValue(maxExamples) < 0) throw new ArgumentException("--max-examples must be 0 (all) or positive");
            if (r.GetValue(slBatches) < 1) throw new ArgumentException("--sl-probe-batches must be positive");
            var template = o.Read(r, "", resume: true);
            var sl = new SslVsSlOptions { Task = r.GetValue(task)!, MaxExamplesPerSplit = r.GetValue(maxExamples), SupervisedProbeBatches = r.GetValue(slBatches) };
            string rerun = "nsparse " + string.Join(" ", r.Tokens.Select(t => t.Value.Contains(' ') ? $"\"{t.Value}\"" : t.Value));
            string summary = SslVsSlStudy.Run(template, sl, r.GetValue(output)!, rerun);
            Console.WriteLine($"report: {summary}");
        }));
        return cmd;
    }

    private static List<double> ParseFractions(string text)
    {
        var list = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) || !(f > 0 && f <= 1))
                throw new ArgumentException($"--data-fractions: '{part}' is not a fraction in (0, 1]");
            list.Add(f);
        }
        if (list.Count == 0) throw new ArgumentException("--data-fractions: give at least one fraction");
        return list;
    }
}
