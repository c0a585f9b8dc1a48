using ScottPlot;

namespace NativeSparsity.Experiments.Studies;

/// <summary>One curve of the drop chart: mean drop and its spread over seeds at each sparsity.</summary>
public sealed record DropCurve(string Label, double[] Sparsity, double[] MeanDrop, double[] Std, bool Dashed = false);

/// <summary>
/// The essential-sparsity chart: drop from dense against sparsity, one line per task (and mask
/// kind) with ±std error bars, the ±epsilon band, and the x axis held to the levels (a span alone
/// would stretch it to ±100%).
/// </summary>
public static class EssentialPlots
{
    public static void DropChart(string path, string title, IReadOnlyList<DropCurve> curves, double epsilonPoints)
    {
        var plt = new Plot();
        // ScottPlot 5: a VerticalSpan covers a range of y (a HorizontalSpan would be a range of x).
        var span = plt.Add.VerticalSpan(-epsilonPoints, epsilonPoints);
        span.LegendText = $"within ±{epsilonPoints:0.##} points (epsilon)";
        span.FillStyle.Color = Colors.Gray.WithAlpha(0.2);
        var palette = new ScottPlot.Palettes.Category10();
        var colorOf = new Dictionary<string, Color>();
        double maxX = 0, minY = -epsilonPoints, maxY = epsilonPoints;
        foreach (var c in curves)
        {
            // The same task keeps its colour across mask kinds; kinds differ by line pattern.
            string task = c.Label.Split(' ')[0];
            if (!colorOf.TryGetValue(task, out var color)) colorOf[task] = color = palette.GetColor(colorOf.Count);
            var sc = plt.Add.Scatter(c.Sparsity, c.MeanDrop);
            sc.LegendText = c.Label;
            sc.Color = color;
            sc.LineWidth = 2;
            sc.MarkerSize = 6;
            if (c.Dashed) sc.LinePattern = LinePattern.Dashed;
            if (c.Std.Any(s => s > 0))
            {
                var eb = plt.Add.ErrorBar(c.Sparsity, c.MeanDrop, c.Std);
                eb.Color = color;
            }
            for (int i = 0; i < c.Sparsity.Length; i++)
            {
                maxX = Math.Max(maxX, c.Sparsity[i]);
                if (double.IsFinite(c.MeanDrop[i]))
                {
                    minY = Math.Min(minY, c.MeanDrop[i] - c.Std[i]);
                    maxY = Math.Max(maxY, c.MeanDrop[i] + c.Std[i]);
                }
            }
        }
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = v => $"{v * 100:0}%" };
        double pad = 0.05 * (maxY - minY);
        plt.Axes.SetLimits(-0.02, maxX + 0.02, minY - pad, maxY + pad);
        plt.Title(title);
        plt.XLabel("sparsity (share of the encoder's weight matrices pruned)");
        plt.YLabel("drop from dense (metric points)");
        plt.ShowLegend(Alignment.UpperLeft);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plt.SavePng(path, 900, 560);
    }
}
