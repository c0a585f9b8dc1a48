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
